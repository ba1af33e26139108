"""Tests for vidistill/benchmarks/pipeline_overlap.py: two independent steps on two workers."""
import pytest

from vidistill.benchmarks import pipeline_overlap


@pytest.mark.slow  # A world and two dual-encoder steps in spawned workers: ~1-2 min on 2 cores.
def test_short_mode_times_both_steps_and_the_wall_clock():
  result = pipeline_overlap.run(full=False)
  steps = result.details["steps_s"]
  assert sorted(steps) == ["0/de_alt_text_1", "1/de_alt_text_1"]
  assert all(s > 0 for s in steps.values())
  figure = result.figures[0]
  # The wall clock covers at least the longer step; the ratio itself is machine-dependent.
  assert figure.value >= max(steps.values()) and figure.baseline == pytest.approx(sum(steps.values()))
