"""Progress of a job: work done out of a total over time, its rate and ETA, and how durations are
written on the console. The trainer, the captioning job, the evaluators and the pipeline all
report through this one class and one formatter.
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterator


def format_duration(seconds: float | None) -> str:
  """`45s`, `3m05s`, `1h02m05s`; `?` for an unknown (None, infinite, NaN) time."""
  if seconds is None or not math.isfinite(seconds):
    return "?"
  seconds = int(round(max(0.0, seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m{secs:02d}s"
  return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
  """`done` of `total` since the start (wall time on `clock`, less the spans inside `excluded()`).

  Rate and ETA are averages since the start, which is what an ETA needs; `due(every_s)` paces the
  caller's report lines. `clock` is injectable for tests.
  """

  def __init__(self, total: float, *, done: float = 0, clock: Callable[[], float] = time.monotonic):
    self.total, self.done = total, done
    self._done_at_start = done
    self._clock = clock
    self._start = self._last_due = clock()
    self._excluded = 0.0

  def add(self, amount: float = 1) -> None:
    self.done += amount

  @contextlib.contextmanager
  def excluded(self) -> Iterator[None]:
    """Time spent inside does not count (checkpoints, evaluations inside a training loop)."""
    start = self._clock()
    try:
      yield
    finally:
      self._excluded += self._clock() - start

  @property
  def elapsed(self) -> float:
    return max(self._clock() - self._start - self._excluded, 1e-9)

  @property
  def rate(self) -> float:
    """Work per second since the start."""
    return (self.done - self._done_at_start) / self.elapsed

  @property
  def eta_seconds(self) -> float:
    """Seconds until `total` at the rate so far (inf before any progress)."""
    rate = self.rate
    return max(self.total - self.done, 0) / rate if rate > 0 else math.inf

  def due(self, every_s: float) -> bool:
    """True once `every_s` seconds have passed since the last time it was True (or the start)."""
    now = self._clock()
    if now - self._last_due < every_s:
      return False
    self._last_due = now
    return True
