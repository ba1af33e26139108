"""Tests for vidistill/benchmarks/decode_gemma.py: short mode against Hugging Face `generate`."""
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from vidistill.benchmarks import decode_gemma  # noqa: E402


@pytest.mark.slow  # torch + XLA compiles: ~80 s on a loaded 2-core machine
def test_short_mode_matches_hf_tokens_and_gives_finite_ratios():
  result = decode_gemma.run(full=False)
  # Same weights through our importer, greedy on both sides: the same tokens, so the two
  # decoders do the same work.
  assert result.details["greedy_token_agreement_with_hf"] == [1.0] * len(
      decode_gemma.SIZES["short"]["batches"])
  for f in result.figures:
    assert math.isfinite(f.ratio) and f.ratio > 0, f
  assert {f.baseline_name for f in result.figures} == {"HF generate", "s/token at 4 tokens"}
