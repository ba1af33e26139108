"""Tests for the decode benchmarks (vidistill/benchmarks/decode.py: T5, decode_gemma.py: Gemma,
both through decode_vs_hf.py): short mode against Hugging Face `generate`."""
import math

import pytest

pytest.importorskip("torch")  # test dependencies, as in tests/convert/test_convert_t5.py
pytest.importorskip("transformers")

from vidistill.benchmarks import decode  # noqa: E402
from vidistill.benchmarks import decode_gemma  # noqa: E402


# torch + several XLA compiles each: ~40 s (T5) and ~80 s (Gemma) on a loaded 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize("bench, baselines", [
    (decode, {"HF generate", "our no-cache decode", "s/token at 4 tokens"}),
    (decode_gemma, {"HF generate", "s/token at 4 tokens"})], ids=["t5", "gemma"])
def test_short_mode_matches_hf_tokens_and_gives_finite_ratios(bench, baselines):
  result = bench.run(full=False)
  # Same weights through our importer, greedy on both sides: the same tokens (an independent
  # check that the comparison is like for like).
  assert result.details["greedy_token_agreement_with_hf"] == [1.0] * len(
      bench.SIZES["short"]["batches"])
  for f in result.figures:
    assert math.isfinite(f.ratio) and f.ratio > 0, f
  assert {f.baseline_name for f in result.figures} == baselines
