"""timings.json (every step's seconds and the wall clock) and the progress line's ETA.

The ETA is a schedule of the steps still to run, each at its expected cost, on the run's workers
in the order the runner starts them. A step's expected cost is its seconds in the workdir's
timings.json when an earlier run timed it (any seed), else its weight (steps.Step.weight, the
static cost table) times the seconds a unit of weight took in that file, or SECONDS_PER_WEIGHT in
a fresh workdir. It does not extrapolate from the steps finished so far: the first steps (the
world, a short text pre-training) say little about the rest, and such an ETA swung by minutes.
"""
from __future__ import annotations

import json
import os
import statistics
from typing import Hashable, Mapping, Sequence

# timings.json key of the wall clock spent making the workdir's steps (summed over invocations
# without --only / --from, up to the start of the latest step); the other keys are
# "<seed>/<step>" or "all/<step>" step seconds.
WALL_CLOCK = "run/wall_clock"
# Seconds of one unit of Step.weight when nothing was timed yet: a 300-step stage of the default
# variant, about a minute on a 2-core CPU with two steps at once.
SECONDS_PER_WEIGHT = 60.0


def step_key(seed: int | None, name: str) -> str:
  """The timings.json key of a step: `None` for a step run once (the world, the report)."""
  return f"{'all' if seed is None else seed}/{name}"


def record(workdir: str, key: str, seconds: float) -> None:
  """Sets `key` in workdir/timings.json (atomically: a reader never sees half a file)."""
  path = os.path.join(workdir, "timings.json")
  data = read(workdir)
  data[key] = round(seconds, 3)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def read(workdir: str) -> dict[str, float]:
  """workdir/timings.json: seconds of every step, and WALL_CLOCK ({} when absent)."""
  path = os.path.join(workdir, "timings.json")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def expected_costs(weights: Mapping[str, float], last: Mapping[str, float]) -> dict[str, float]:
  """{step name: expected seconds} from the step weights and a timings.json.

  A step timed in `last` costs its mean over the seeds timed; any other step its weight times
  the median seconds per weight of the timed ones (SECONDS_PER_WEIGHT when none was).
  """
  seen: dict[str, list[float]] = {}
  for key, seconds in last.items():
    if key != WALL_CLOCK:
      seen.setdefault(key.split("/", 1)[1], []).append(float(seconds))
  rates = [statistics.fmean(seen[n]) / w for n, w in weights.items() if n in seen and w > 0]
  rate = statistics.median(rates) if rates else SECONDS_PER_WEIGHT
  return {n: statistics.fmean(seen[n]) if n in seen else w * rate for n, w in weights.items()}


def eta_seconds(pending: Sequence[tuple[Hashable, float, frozenset]],
                running: Sequence[tuple[Hashable, float]], workers: int) -> float:
  """Seconds until every step is done, simulating the runner's schedule at expected costs.

  pending: (key, expected seconds, keys it needs) in the runner's start order; running: (key,
  expected seconds left, at least 0). A step starts once none of its needs is pending or running,
  the first such in order, while fewer than `workers` run.
  """
  queue = list(pending)
  active = {key: max(0.0, left) for key, left in running}
  waiting = {key for key, _, _ in queue} | set(active)
  clock = 0.0
  while queue or active:
    for item in [i for i in queue if not i[2] & waiting]:
      if len(active) >= workers:
        break
      queue.remove(item)
      active[item[0]] = item[1]
    if not active:  # What is left waits for steps that never run; the runner raises there.
      break
    step = min(active.values())
    clock += step
    for key in list(active):
      active[key] -= step
      if active[key] <= 0:
        del active[key]
        waiting.discard(key)
  return clock
