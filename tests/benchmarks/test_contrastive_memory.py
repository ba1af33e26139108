"""Tests for vidistill/benchmarks/contrastive_memory.py on the 8 CPU devices (tests/conftest.py)."""
import jax
import pytest

from vidistill.benchmarks import contrastive_memory as cm


@pytest.mark.parametrize("kind", cm.LOSSES)
def test_chunked_same_loss_less_memory(kind):
  assert jax.device_count() >= 8
  m = cm.measure(kind, 256, 16, 8)
  assert m["chunked_loss"] == pytest.approx(m["naive_loss"], rel=1e-5)
  assert m["naive_grad_finite"] == 1.0 and m["chunked_grad_finite"] == 1.0
  assert m["chunked_temp_bytes"] < m["naive_temp_bytes"]


def test_chunked_memory_follows_the_local_batch_only():
  two, eight = cm.measure("sigmoid", 64, 16, 2), cm.measure("sigmoid", 256, 16, 8)  # local 32
  assert eight["chunked_temp_bytes"] <= 1.25 * two["chunked_temp_bytes"]
  assert eight["naive_temp_bytes"] > 2 * two["naive_temp_bytes"]
