"""Runs the pipeline's steps: skips complete ones, honours --only / --from, prints progress + ETA.

A step is complete when its directory holds DONE (vidistill/pipeline/steps.py). Steps named with
--only or --from are run again even when complete (their directory is cleared first): that is how
a user redoes a step after changing its config. The progress line

    [pipeline] 7/31 seed 0 caption_pseudo: running | 2m10s elapsed | ETA 5m40s

estimates the rest from the steps timed so far (their relative weights, steps.Step.weight).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Callable, Sequence

import ml_collections

from vidistill import compile_cache
from vidistill.pipeline import steps as steps_lib


def _fmt(seconds: float) -> str:
  seconds = int(round(max(0.0, seconds)))
  return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def plan(config: ml_collections.ConfigDict, workdir: str, *, only: str = "", start: str = "",
         seeds: int = 1) -> list[tuple[steps_lib.Step, steps_lib.Context, bool]]:
  """(step, context, forced) in run order: the world, every seed's steps, the report."""
  all_steps = steps_lib.build(config)
  names = [s.name for s in all_steps]
  for flag, value in (("--only", only), ("--from", start)):
    if value and value not in names:
      raise steps_lib.PipelineError(f"{flag}={value!r} is not a step of this pipeline; its steps "
                                    f"are: {', '.join(names)}")
  if only and start:
    raise steps_lib.PipelineError("give --only or --from, not both")
  if only:
    chosen = {only}
  elif start:
    chosen = set(names[names.index(start):])
  else:
    chosen = set(names)
  forced = bool(only or start)
  out = []
  contexts = [steps_lib.Context(config, workdir, seed) for seed in range(max(1, seeds))]
  for step in all_steps:
    if step.name not in chosen:
      continue
    for ctx in (contexts if step.per_seed else contexts[:1]):
      out.append((step, ctx, forced))
  return out


def run(config: ml_collections.ConfigDict, workdir: str, *, only: str = "", start: str = "",
        seeds: int = 1, log: Callable[[str], None] | None = None) -> dict[str, float]:
  """Runs the plan; returns {"<seed>/<step>": seconds} of the steps run now (skipped: absent)."""
  log = log or (lambda line: print(line, file=sys.stderr, flush=True))
  todo = plan(config, workdir, only=only, start=start, seeds=seeds)
  os.makedirs(workdir, exist_ok=True)
  if config.get("compile_cache"):
    compile_cache.enable(os.path.join(workdir, config.compile_cache))
  pending = [(s, c, f) for s, c, f in todo if f or not steps_lib.is_done(s.out_dir(c))]
  total_weight = sum(s.weight for s, _, _ in pending) or 1.0
  done_weight, spent, started = 0.0, 0.0, time.monotonic()
  timings: dict[str, float] = {}
  for number, (step, ctx, forced) in enumerate(todo, start=1):
    out = step.out_dir(ctx)
    label = f"{number}/{len(todo)} " + (f"seed {ctx.seed} " if step.per_seed else "") + step.name
    if not forced and steps_lib.is_done(out):
      log(f"[pipeline] {label}: complete, skipped")
      continue
    rate = spent / done_weight if done_weight else 60.0  # Seconds per unit weight.
    log(f"[pipeline] {label}: running | {_fmt(time.monotonic() - started)} elapsed | "
        f"ETA {_fmt(rate * (total_weight - done_weight))}")
    if os.path.isdir(out) and (forced or step.name != "world") and not (
        step.name == "world" and config.world.dir):
      shutil.rmtree(out)  # A partial or forced step starts clean: its outputs are all its own.
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    step.run(ctx, out)
    seconds = time.monotonic() - t0
    if step.name != "world":  # The world writes its own DONE.
      with open(os.path.join(out, steps_lib.DONE), "w", encoding="utf-8") as f:
        json.dump({"step": step.name, "seed": ctx.seed, "seconds": round(seconds, 3)}, f)
    _record_time(workdir, f"{ctx.seed if step.per_seed else 'all'}/{step.name}", seconds)
    timings[f"{ctx.seed}/{step.name}"] = seconds
    spent += seconds
    done_weight += step.weight
    log(f"[pipeline] {label}: done in {_fmt(seconds)} | {_fmt(time.monotonic() - started)} "
        f"elapsed | ETA {_fmt(spent / done_weight * (total_weight - done_weight))}")
  return timings


def _record_time(workdir: str, key: str, seconds: float) -> None:
  """workdir/timings.json: the last duration of every step (read by the report)."""
  path = os.path.join(workdir, "timings.json")
  data = {}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  data[key] = round(seconds, 3)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def read_timings(workdir: str) -> dict[str, float]:
  path = os.path.join(workdir, "timings.json")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def step_names(config: ml_collections.ConfigDict) -> Sequence[str]:
  return [s.name for s in steps_lib.build(config)]
