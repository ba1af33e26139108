"""Tests for vidistill/benchmarks/scaling.py: subprocess weak scaling and the paper projection."""
import pytest
import math

from vidistill.benchmarks import scaling


@pytest.mark.slow  # ~50 s: runs in .ci/run's slow phase.
def test_short_mode_scaling_and_projection():
  result = scaling.run(full=False)
  efficiency = result.figures[0].ratio
  assert 0 < efficiency < 1.5
  p = result.details["projection"]
  f = p["flops_per_clip_prompt"]
  # Independent lower bound: 2 FLOPs per parameter per token through the ViT-G/14 (16 frames of
  # 16x16 patches) is most of the encoder's cost; the whole clip cannot cost less than that.
  vit_g_params = 1.8e9
  assert f["encode"] > 2 * vit_g_params * 16 * 256
  assert f["total"] == f["encode"] + f["cross_kv"] + f["decode"]
  expected = 17e6 * 2 * f["total"] / (197e12 * p["assumed_mfu"]) / 3600
  assert math.isclose(p["v5e_hours"], expected, rel_tol=1e-9)
