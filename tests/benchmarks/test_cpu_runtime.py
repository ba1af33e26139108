"""Tests for vidistill/benchmarks/cpu_runtime.py: the short mode's children and what they report."""
import math

import pytest

from vidistill.benchmarks import cpu_runtime


@pytest.mark.slow  # Seven child processes, each importing JAX and compiling a train step.
def test_short_mode_levers_change_speed_not_results():
  result = cpu_runtime.run(full=False)
  d = result.details
  # The allocator and the device layout change where the time goes, never the numbers: the same
  # steps from the same init give the same loss (the layout splits the batch, so its sums differ
  # in order only).
  assert d["tuned"]["loss"] == d["system"]["loss"]
  assert d["split"]["loss"] == pytest.approx(d["tuned"]["loss"], rel=1e-5)
  assert d["multi_step"]["loss"] == pytest.approx(d["split"]["loss"], rel=1e-5)
  assert d["tuned"]["malloc"] is True and d["system"]["malloc"] is False
  assert d["split"]["devices"] == max(1, d["cores"])
  assert all(r["devices"] == max(1, d["cores"] // 2) for r in d["pair_split"])
  assert all(r["devices"] == 1 for r in d["pair_one"])
  for figure in result.figures:
    assert math.isfinite(figure.ratio) and figure.ratio > 0, figure
