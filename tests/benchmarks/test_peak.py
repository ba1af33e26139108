"""Tests for vidistill/benchmarks/peak.py."""
import math

from vidistill.benchmarks import peak


def test_matmul_peak_is_finite_and_plausible():
  rate = peak.matmul_flops_per_s("float32", 128, repeats=2)
  # Any CPU does 128^3 multiply-adds faster than 10 MFLOP/s and slower than 100 TFLOP/s.
  assert math.isfinite(rate) and 1e7 < rate < 1e14


def test_run_reports_both_dtypes():
  result = peak.run(full=False)
  assert set(result.details["flops_per_s"]) == {"float32", "bfloat16"}
  assert result.figures[0].ratio > 0
