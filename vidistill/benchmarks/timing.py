"""Timing helpers every benchmark shares: warm up (compile) first, then the median of repeats.

Absolute times on a shared CPU move by tens of percent between runs, so benchmarks report ratios
of two medians taken in the same run; the median (not the mean) keeps one preempted repeat from
moving a figure.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import jax


def median_seconds(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> float:
  """Median wall time of `fn()` in seconds, after `warmup` untimed calls (compilation).

  `fn`'s result is passed through `jax.block_until_ready`, so asynchronous dispatch is timed to
  the end of the computation.
  """
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def seconds_per_token(decode: Callable[[int], Any], setup: Callable[[int], Any],
                      lengths: tuple[int, ...], *, repeats: int = 5) -> dict[int, float]:
  """`{length: s/token}` of a decoder: the median of `decode(length)` less that of `setup(length)`
  (the encoder or the prefill, which does not grow with the output), over `length` tokens."""
  out = {}
  for length in lengths:
    total = median_seconds(lambda: decode(length), repeats=repeats)
    fixed = median_seconds(lambda: setup(length), repeats=repeats)
    out[length] = max(total - fixed, 1e-9) / length
  return out
