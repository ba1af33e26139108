"""What the captioning job needs from a model: the `Captioner` protocol, and where one is loaded.

The job drives any object with this shape, so it is tested with a deterministic fake and runs
the adapted video VLM (vidistill.models.vlm `predict_batch`) in production through
`load_captioner`, the one seam between the job and the model code.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import ml_collections
import numpy as np

from vidistill.config_args import ConfigError


@runtime_checkable
class Captioner(Protocol):
  """Captions a batch of videos for one prompt each.

  Attributes:
    name: the checkpoint id, written into every output row.
    decode_settings: JSON-serialisable decode settings, written into every output row.
  """
  name: str
  decode_settings: dict

  def caption(self, frames: np.ndarray, prompts: list[str],
              rng_seed: int) -> list[list[tuple[str, float]]]:
    """frames: uint8 [B, T, H, W, 3]; prompts: B strings; rng_seed: seeds sampling for the batch.

    Returns, per video, num_samples (caption, log-likelihood) pairs. Greedy and beam decoding
    must not depend on `rng_seed` (nor on the other videos of the batch).
    """
    ...


def count_tokens(captioner: Captioner, text: str) -> int:
  """Tokens in `text` for the tokens/s figure: the captioner's tokenizer when it has one
  (`count_tokens(text) -> int`), else whitespace words."""
  counter = getattr(captioner, "count_tokens", None)
  return int(counter(text)) if callable(counter) else len(text.split())


def load_captioner(config: ml_collections.ConfigDict, checkpoint_dir: str) -> Captioner:
  """The adapted video VLM in `checkpoint_dir` (a `vidistill train` workdir), decoding as
  `config.decode` says; sets `config.num_frames` / `resolution` to the model's (ConfigError when
  they were set to something else)."""
  from vidistill.models import vlm_text  # pylint: disable=g-import-not-at-top  (jax, on demand)
  from vidistill.models import trained as trained_lib  # pylint: disable=g-import-not-at-top
  from vidistill.models import build  # pylint: disable=g-import-not-at-top
  trained_config = trained_lib.read_config(checkpoint_dir)
  # Checked before anything is loaded or written: a wrong setting fails in one line, and the
  # output directory is not touched. Frames and resolution are the checkpoint's (0 = unset).
  if build.family(trained_config.model.kind) != "vlm":
    raise ConfigError(f"{checkpoint_dir!r} holds a {trained_config.model.kind!r} model; the "
                      "captioning job needs a video VLM (a vlm stage's workdir)")
  trained_lib.fill_input_settings(config, trained_lib.read_shapes(trained_config),
                                  where="the caption config (num_frames / resolution)")
  trained = trained_lib.load(checkpoint_dir)
  lengths = trained.config.data.seq_lengths
  runner = vlm_text.VLMText(trained.model, trained.params, trained.vocab,
                            prompt_length=int(lengths.get("inputs", 32)),
                            answer_length=int(lengths.get("targets", 32)))
  return VLMCaptioner(runner, vlm_text.decode_config(config.decode, config.num_samples),
                      name=checkpoint_dir, decode_settings=dict(config.decode))


class VLMCaptioner:
  """The Captioner protocol over `vidistill.models.vlm_text.VLMText`."""

  def __init__(self, runner, decode, *, name: str, decode_settings: dict):
    self.runner, self.decode = runner, decode
    self.name, self.decode_settings = name, decode_settings

  def caption(self, frames: np.ndarray, prompts: list[str],
              rng_seed: int) -> list[list[tuple[str, float]]]:
    return self.runner.generate(frames, prompts, self.decode, rng_seed)

  def count_tokens(self, text: str) -> int:
    return len(self.runner.vocab.encode(text))
