"""What the decode benchmarks share (decode.py: T5, decode_gemma.py: Gemma): our cached greedy
decode against Hugging Face `generate` over batches and output lengths, the token agreement of the
two on the same weights, and the time per token at a short and a long output.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vidistill.benchmarks import report
from vidistill.benchmarks import timing

# (inputs [B, S] int32, output length) -> the decoded tokens [B, length].
Decoder = Callable[[np.ndarray, int], Any]


def hf_and_ours(hf_fields: Mapping[str, Any], make_hf_model: Callable[[Any], Any],
                import_weights: Callable[[Any], tuple[Any, Any]],
                make_decoders: Callable[[Any], dict[str, Any]]) -> tuple[Any, Any, dict[str, Any]]:
  """The HF model built from `hf_fields`, our params imported from its weights, and our jitted
  decoders for the imported config: -> (hf_model, params, decoders)."""
  hf_model = make_hf_model(hf_fields)
  config, params = import_weights(hf_model)
  return hf_model, params, make_decoders(config)


def greedy_against_hf(benchmark: str, ours: Decoder, hf: Decoder,
                      inputs: Mapping[int, np.ndarray], lengths: Sequence[int], *, repeats: int,
                      note: str, goals: Mapping[int, float] | None = None
                      ) -> tuple[list[report.Figure], dict[str, Any]]:
  """Tokens/s of `ours` against `hf` for every batch size in `inputs` ({batch: [batch, S]}) and
  output length; `goals`: {batch: ratio goal}.

  Returns the figures and the details {"tokens_per_s": {"b{batch}_l{length}": {"ours", "hf"}},
  "greedy_token_agreement_with_hf": [the fraction of equal tokens at the longest length, per
  batch]}: 1.0 when both decode the same weights, an independent check of like for like.
  """
  figures, per_s, agree = [], {}, []
  for batch, tokens in inputs.items():
    for length in lengths:
      ours_s = timing.median_seconds(lambda: ours(tokens, length), repeats=repeats)
      hf_s = timing.median_seconds(lambda: hf(tokens, length), repeats=repeats)
      n = batch * length
      per_s[f"b{batch}_l{length}"] = {"ours": n / ours_s, "hf": n / hf_s}
      figures.append(report.Figure(
          benchmark, f"cached greedy, batch {batch}, {length} tokens", n / ours_s, "HF generate",
          n / hf_s, unit="tok/s", goal=(goals or {}).get(batch), note=note))
    length = lengths[-1]
    agree.append(float(np.mean(np.asarray(ours(tokens, length)) == np.asarray(hf(tokens, length)))))
  return figures, {"tokens_per_s": per_s, "greedy_token_agreement_with_hf": agree}


def flat_per_token(benchmark: str, decode: Decoder, setup: Decoder, tokens: np.ndarray,
                   lengths: tuple[int, int], *, repeats: int, goal: float | None,
                   setup_name: str) -> tuple[report.Figure, dict[int, float]]:
  """The time per token after `setup` (encoder or prefill) of `tokens` [B, S] at the long output of
  `lengths` against the short one: a ratio near 1 when the KV cache keeps a step's cost flat in
  the position. -> (the figure, {length: s/token})."""
  per_token = timing.seconds_per_token(lambda n: decode(tokens, n), lambda n: setup(tokens, n),
                                       lengths, repeats=repeats)
  short, long = lengths
  figure = report.Figure(
      benchmark, f"s/token at {long} tokens, batch {len(tokens)}", per_token[long],
      f"s/token at {short} tokens", per_token[short], unit="s", goal=goal, lower_is_better=True,
      note=f"cached greedy, {setup_name} time subtracted")
  return figure, per_token
