"""The video VLM with text in and out: prompts and answers as strings, for inference.

`VLMText` binds a `vlm.VideoLanguageModel`, its parameters and the vocabulary it was trained with;
the captioning job (caption/captioner.py) and the evaluators (eval/evaluators/common.py) both use
it, so tokenisation and decoding are done one way everywhere.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from vidistill.config_args import ConfigError
from vidistill.models import dual_encoder_model
from vidistill.models import vlm


def decode_config(settings: Mapping[str, Any], num_samples: int = 1) -> vlm.DecodeConfig:
  """A config's `decode` block (configs/caption, configs/eval) -> vlm.DecodeConfig.

  The block's keys are DecodeConfig's field names (num_samples aside: the caption job's
  `config.num_samples`, used when the method samples); keys it leaves out keep DecodeConfig's
  defaults, an unknown key is an error naming it and the known ones.
  """
  fields = {f.name: f for f in dataclasses.fields(vlm.DecodeConfig) if f.name != "num_samples"}
  unknown = sorted(set(settings) - set(fields))
  if unknown:
    raise ConfigError(f"decode settings {unknown} are not known; expected some of "
                      f"{sorted(fields)}")
  cast = {"str": str, "int": int, "float": float}
  kwargs = {k: cast[fields[k].type](v) for k, v in settings.items()}
  if kwargs.get("method", "greedy") == "sample":
    kwargs["num_samples"] = int(num_samples)
  return vlm.DecodeConfig(**kwargs)


@dataclasses.dataclass
class VLMText:
  model: vlm.VideoLanguageModel
  params: Any
  vocab: Any
  prompt_length: int = 32
  answer_length: int = 32

  def tokenize(self, texts: Sequence[str], length: int) -> np.ndarray:
    return dual_encoder_model.tokenize(texts, self.vocab, length)

  def detokenize(self, tokens: np.ndarray) -> str:
    ids = [int(t) for t in tokens]
    if self.vocab.eos_id in ids:
      ids = ids[:ids.index(self.vocab.eos_id)]
    return self.vocab.decode([i for i in ids if i != 0])

  def generate(self, frames: np.ndarray, prompts: Sequence[str], decode: vlm.DecodeConfig,
               rng_seed: int = 0) -> list[list[tuple[str, float]]]:
    """frames uint8 [B, T, H, W, 3], B prompts -> per video K (text, log-likelihood), best first."""
    batch = {"video": np.asarray(frames),
             "prompt_tokens": self.tokenize(prompts, self.prompt_length)}
    rng = jax.random.key(rng_seed) if decode.method == "sample" else None
    _, aux = self.model.predict_batch(self.params, batch, decode, rng=rng)
    tokens, scores = np.asarray(aux["all_tokens"]), np.asarray(aux["scores"])
    return [[(self.detokenize(tokens[b, k]), float(scores[b, k])) for k in range(tokens.shape[1])]
            for b in range(tokens.shape[0])]

  def score(self, frames: np.ndarray, prompts: Sequence[str],
            candidates: Sequence[Sequence[str]]) -> np.ndarray:
    """Log-likelihood [B, C] of each candidate answer given (video, prompt)."""
    num = {len(c) for c in candidates}
    if len(num) != 1:
      raise ValueError(f"every example needs the same number of candidates, got {sorted(num)}")
    flat = [c for cands in candidates for c in cands]
    targets = self.tokenize(flat, self.answer_length).reshape(len(candidates), num.pop(), -1)
    batch = {"video": np.asarray(frames),
             "prompt_tokens": self.tokenize(prompts, self.prompt_length),
             "target_tokens": targets}
    scores, _ = self.model.score_batch(self.params, batch)
    return np.asarray(scores)
