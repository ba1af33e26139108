"""Tests for vidistill/benchmarks/streaming_input.py: its corpus, and the short mode end to end."""
import math

import numpy as np
import pytest

from vidistill.benchmarks import cpu_runtime
from vidistill.benchmarks import streaming_input
from vidistill.data import grain_source


def test_the_corpus_has_the_models_input_shapes(tmp_path):
  m = cpu_runtime.SIZES["short"]
  prefix = streaming_input.write_corpus(str(tmp_path / "c"), 10, m, num_shards=3)
  rows = grain_source.open_records(prefix)
  assert len(rows) == 10
  assert rows[3]["video"].shape == (m["frames"], m["res"], m["res"], 3)
  assert rows[3]["prompt_tokens"].shape == (m["prompt"],)
  assert rows[3]["target_tokens"].dtype == np.int32
  assert streaming_input.examples_per_s(
      streaming_input._stream(prefix, 2), 3, 2) > 0  # pylint: disable=protected-access


@pytest.mark.slow  # ~90 s: two small training loops, three reader processes.
def test_short_mode_ratios_are_finite():
  result = streaming_input.run(full=False)
  assert len(result.figures) == 4
  for f in result.figures:
    assert math.isfinite(f.ratio) and 0 < f.ratio < 100, f
  assert set(result.details["peak_rss_mb"]) == {"stream_x1", "stream_x10", "memory_x10"}
