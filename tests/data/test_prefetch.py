"""Tests for vidistill.data.prefetch: order, per-item errors, concurrency, laziness."""
import itertools
import threading
import time

import pytest

from vidistill.data import prefetch


def test_prefetch_map_in_order_with_errors_per_item():
  def fn(x):
    time.sleep(0.002 * ((7 * x) % 5))  # Finish out of order.
    if x % 4 == 3:
      raise ValueError(f"bad {x}")
    return x * x

  results = list(prefetch.prefetch_map(fn, range(20), num_workers=4, buffer=6))
  assert [item for item, _ in results] == list(range(20))
  for item, result in results:
    if item % 4 == 3:
      assert isinstance(result, ValueError) and str(result) == f"bad {item}"
    else:
      assert result == item * item


def test_prefetch_map_runs_concurrently_and_lazily():
  barrier = threading.Barrier(3, timeout=10)  # Only passes if three calls run at the same time.
  pulled = []

  def items():
    for i in itertools.count():
      pulled.append(i)
      yield i

  stream = prefetch.prefetch_map(lambda x: barrier.wait() if x < 3 else x, items(), num_workers=3,
                                 buffer=4)
  got = [next(stream) for _ in range(5)]
  assert [item for item, _ in got] == list(range(5))
  assert not any(isinstance(r, Exception) for _, r in got)
  assert len(pulled) <= 5 + 4  # The endless input is read only `buffer` ahead.
  stream.close()
  with pytest.raises(ValueError, match="num_workers"):
    next(prefetch.prefetch_map(abs, [1], num_workers=0))
