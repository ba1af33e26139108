"""Steps run at once by the pipeline (config.workers = 2): the wall clock against the sum of the
steps' own seconds, both measured in the same run. Below 1 means the workers overlapped; how far
below depends on the machine's cores and its load, which is why this is a benchmark, not a test.

Short mode: two independent steps (the `quick` variant's alt-text dual encoder, seeds 0 and 1) on
its world. Full mode: the whole `quick` pipeline.
"""
from __future__ import annotations

import tempfile
import time

from vidistill.benchmarks import report
from vidistill.pipeline import layout
from vidistill.pipeline import runner


def measure(full: bool, workdir: str) -> tuple[float, dict[str, float]]:
  """(wall seconds, {step: seconds}) of the measured runner call, with two workers."""
  config = layout.load_config("pipeline.py", "quick")
  config.workers = 2
  quiet = lambda line: None  # noqa: E731
  if not full:
    runner.run(config, workdir, only="world", log=quiet)  # Made first, not measured.
  start = time.monotonic()
  steps = (runner.run(config, workdir, log=quiet) if full else
           runner.run(config, workdir, only="de_alt_text_1", seeds=2, log=quiet))
  return time.monotonic() - start, steps


def run(full: bool = False) -> report.Result:
  with tempfile.TemporaryDirectory() as workdir:
    wall, steps = measure(full, workdir)
  what = "the quick pipeline" if full else "2 independent dual-encoder steps (quick world)"
  fig = report.Figure(
      "pipeline_overlap", f"wall clock of {what}, 2 workers", wall, "sum of the steps' seconds",
      sum(steps.values()), unit="s", goal=1.0, lower_is_better=True,
      note=f"{len(steps)} steps; below 1: the workers overlapped")
  return report.Result("pipeline_overlap", [fig], {"steps_s": steps, "wall_s": wall})
