"""Progress of one captioning process: console lines (absl) and a JSONL metrics file.

Every `every_s` seconds (and at the end) one line is logged and one JSON object appended to
`<output>/metrics/process-00000.jsonl`: units and videos done, failures, videos/s, tokens/s and
the ETA of this process's remaining videos, and the share of time the captioner waited for
decoded frames (input_wait_fraction: ~0 when the prefetch threads keep ahead). Rates are averages
since this run started (after the skipped units), which is what an ETA needs.
"""
from __future__ import annotations

import collections
import json
import math
import os
import time
from typing import Any, Callable

from absl import logging

from vidistill import fs
from vidistill import progress as progress_lib


def metrics_path(output_dir: str, process_index: int) -> str:
  return os.path.join(output_dir, "metrics", f"process-{process_index:05d}.jsonl")


class JobMeter:
  """Counts a process's work and reports it; `clock` is injectable for tests."""

  def __init__(self, output_dir: str, process_index: int, *, units_total: int,
               videos_total: int, every_s: float, clock: Callable[[], float] = time.monotonic):
    self.path = metrics_path(output_dir, process_index)
    fs.makedirs(os.path.dirname(self.path))
    self.units_total, self.videos_total, self.every_s = units_total, videos_total, every_s
    self.progress = progress_lib.Progress(videos_total, clock=clock)  # Videos handled.
    self.units_done = self.videos_done = self.videos_failed = self.tokens = 0
    self.input_wait_s = 0.0  # Time the captioning loop waited for decoded frames.
    self.failures_by_kind: collections.Counter = collections.Counter()

  def add_batch(self, videos: int, tokens: int) -> None:
    self.videos_done += videos
    self.tokens += tokens
    self.progress.add(videos)

  def add_failure(self, kind: str) -> None:
    self.videos_failed += 1
    self.failures_by_kind[kind] += 1
    self.progress.add(1)

  def add_unit(self) -> None:
    self.units_done += 1

  def snapshot(self) -> dict[str, Any]:
    elapsed = self.progress.elapsed
    eta = self.progress.eta_seconds
    return {
        "time": time.time(), "elapsed_s": round(elapsed, 3),
        "units_done": self.units_done, "units_total": self.units_total,
        "videos_done": self.videos_done, "videos_failed": self.videos_failed,
        "videos_total": self.videos_total,
        "videos_per_s": round(self.videos_done / elapsed, 4),
        "tokens_per_s": round(self.tokens / elapsed, 4),
        "eta_s": round(eta, 1) if math.isfinite(eta) else None,
        # Near 0 when prefetching keeps up: the captioner (accelerator) never waits on input.
        "input_wait_fraction": round(self.input_wait_s / elapsed, 4),
    }

  def maybe_report(self, force: bool = False) -> dict[str, Any] | None:
    if not self.progress.due(self.every_s) and not force:
      return None
    snap = self.snapshot()
    eta = progress_lib.format_duration(snap["eta_s"])
    logging.info("caption: units %d/%d, videos %d/%d (%d failed), %.2f videos/s, %.1f tokens/s, "
                 "input wait %.0f%%, ETA %s", snap["units_done"], snap["units_total"],
                 snap["videos_done"], snap["videos_total"], snap["videos_failed"],
                 snap["videos_per_s"], snap["tokens_per_s"], 100 * snap["input_wait_fraction"],
                 eta)
    # Remote (gs://): an append rewrites the object; one line per report, so small.
    with fs.open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(snap) + "\n")
    return snap

