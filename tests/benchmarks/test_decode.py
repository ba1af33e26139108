"""Tests for vidistill/benchmarks/decode.py: short mode against Hugging Face `generate`."""
import math

import pytest

pytest.importorskip("torch")  # test dependencies, as in tests/convert/test_convert_t5.py
pytest.importorskip("transformers")

from vidistill.benchmarks import decode  # noqa: E402


@pytest.mark.slow  # torch + 6 XLA compiles: ~40 s of CPU; minutes on a shared machine.
def test_short_mode_matches_hf_tokens_and_gives_finite_ratios():
  result = decode.run(full=False)
  # Same weights through our importer, greedy on both sides: the same tokens (an independent
  # check that the comparison is like for like).
  assert result.details["greedy_token_agreement_with_hf"] == [1.0] * len(
      decode.SIZES["short"]["batches"])
  for f in result.figures:
    assert math.isfinite(f.ratio) and f.ratio > 0, f
  names = {f.baseline_name for f in result.figures}
  assert names == {"HF generate", "our no-cache decode", "s/token at 4 tokens"}
