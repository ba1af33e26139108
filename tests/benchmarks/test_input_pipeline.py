"""Tests for vidistill/benchmarks/input_pipeline.py: the short mode runs end to end."""
import pytest
import math

import numpy as np

from vidistill.benchmarks import input_pipeline
from vidistill.data import video_io


def test_written_clips_decode_to_their_size(tmp_path):
  paths = input_pipeline.write_clips(str(tmp_path), 2, 8, 32)
  frames = video_io.read_video(paths[0], 4, resolution=16)
  assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
  assert input_pipeline.raw_decode_clips_per_s(paths) > 0


@pytest.mark.slow  # ~50 s: runs in .ci/run's slow phase.
def test_short_mode_ratios_are_finite():
  result = input_pipeline.run(full=False)
  sweep = input_pipeline.SIZES["short"]["batch_sweep"]
  assert len(result.figures) == 3 + 2 * (len(sweep) - 1)
  assert sorted(result.details["batch_sweep"]) == sorted(sweep)
  for f in result.figures:
    assert math.isfinite(f.ratio) and 0 < f.ratio < 100, f
