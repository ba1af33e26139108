"""Runs the pipeline's steps: skips complete ones, honours --only / --from, prints progress + ETA.

A step is complete when its directory holds DONE (vidistill/pipeline/steps.py). Steps named with
--only or --from are run again even when complete (their directory is cleared first): that is how
a user redoes a step after changing its config. The progress line

    [pipeline] 7/31 seed 0 caption_pseudo: running | 2m10s elapsed | ETA 5m40s

estimates the rest from the steps' expected costs (timings.py: the workdir's last timings.json,
else the static weights of steps.Step).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import time
import traceback
from typing import Any, Callable, Sequence

import ml_collections

from vidistill import compile_cache
from vidistill import orphans
from vidistill import runtime
from vidistill import tf_quiet
from vidistill.pipeline import layout
from vidistill.pipeline import timings as timings_lib
from vidistill.pipeline import steps as steps_lib
from vidistill.progress import format_duration




def plan(config: ml_collections.ConfigDict, workdir: str, *, only: str = "", start: str = "",
         seeds: int = 1) -> list[tuple[steps_lib.Step, layout.Context, bool]]:
  """(step, context, forced) in run order: the world, every seed's steps, the report."""
  all_steps = steps_lib.build(config)
  names = [s.name for s in all_steps]
  for flag, value in (("--only", only), ("--from", start)):
    if value and value not in names:
      raise layout.PipelineError(f"{flag}={value!r} is not a step of this pipeline; its steps "
                                    f"are: {', '.join(names)}")
  if only and start:
    raise layout.PipelineError("give --only or --from, not both")
  if only:
    chosen = {only}
  elif start:
    chosen = set(names[names.index(start):])
  else:
    chosen = set(names)
  forced = bool(only or start)
  out = []
  contexts = [layout.Context(config, workdir, seed) for seed in range(max(1, seeds))]
  for step in all_steps:
    if step.name not in chosen:
      continue
    for ctx in (contexts if step.per_seed else contexts[:1]):
      out.append((step, ctx, forced))
  return out


def run(config: ml_collections.ConfigDict, workdir: str, *, only: str = "", start: str = "",
        seeds: int = 1, log: Callable[[str], None] | None = None,
        workers: int | None = None, launch: Launcher | None = None) -> dict[str, float]:
  """Runs the plan; returns {"<seed>/<step>": seconds} of the steps run now (skipped: absent).

  workers (default config.workers): steps run at once. 1 = one after the other in this process;
  more = each step in its own spawned process, a step starting once the steps it reads
  (steps.Step.needs) are complete. A failed step lets the running ones finish, starts no other,
  and raises: the complete steps are kept, a rerun resumes.
  """
  log = log or (lambda line: print(line, file=sys.stderr, flush=True))
  workers = max(1, int(config.get("workers", 1) if workers is None else workers))
  pool = _Pool(workers) if launch is None and workers > 1 else None
  try:
    return _run(config, workdir, only=only, start=start, seeds=seeds, log=log, workers=workers,
                launch=launch or pool or _run_here)
  finally:
    if pool is not None:
      pool.executor.shutdown(wait=True, cancel_futures=True)


def _run(config: ml_collections.ConfigDict, workdir: str, *, only: str, start: str, seeds: int,
         log: Callable[[str], None], workers: int, launch: Launcher) -> dict[str, float]:
  todo = plan(config, workdir, only=only, start=start, seeds=seeds)
  os.makedirs(workdir, exist_ok=True)
  if config.get("compile_cache"):
    compile_cache.enable(os.path.join(workdir, config.compile_cache))
  by_name = {s.name: s for s in steps_lib.build(config)}
  seed_list = list(range(max(1, seeds)))
  jobs = []
  for number, (step, ctx, forced) in enumerate(todo, start=1):
    label = f"{number}/{len(todo)} " + (f"seed {ctx.seed} " if step.per_seed else "") + step.name
    needs = _needs(step, ctx, by_name, seed_list)
    # A complete step whose inputs are being made again is stale (the report after --seeds 3
    # on a one-seed workdir, a stage after its input's folder was deleted): it runs again.
    stale = sorted({name for _, name in needs & {job.key for job in jobs}})
    if not forced and layout.is_done(step.out_dir(ctx)):
      if not stale:
        log(f"[pipeline] {label}: complete, skipped")
        continue
      names = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
      log(f"[pipeline] {label}: complete, but {names} run again: redoing it")
    jobs.append(_Job(step, ctx, label, forced or bool(stale), needs))
  waiting = {job.key for job in jobs}  # Steps of this run not complete yet.
  # The report's wall clock sums the invocations that made its steps (a first run, a resume
  # after a crash, more seeds); --only / --from reruns are not counted.
  counted = not only and not start
  last = timings_lib.read(workdir)
  wall_before = last.get(timings_lib.WALL_CLOCK, 0.0) if counted else 0.0
  costs = timings_lib.expected_costs({s.name: s.weight for s in by_name.values()}, last)
  started = time.monotonic()
  timings: dict[str, float] = {}
  running: list[tuple[_Job, Any, float]] = []
  failed: list[str] = []

  def eta(starting: _Job | None = None) -> str:
    now = time.monotonic()
    pending = [(job.key, costs[job.step.name], frozenset(job.needs)) for job in jobs]
    active = [(job.key, costs[job.step.name] - (now - t0)) for job, _, t0 in running]
    if starting is not None:  # Logged before its launch (in-process, launch runs the step).
      active.append((starting.key, costs[starting.step.name]))
    return format_duration(timings_lib.eta_seconds(pending, active, workers))

  while jobs or running:
    for job in [j for j in jobs if not j.needs & waiting]:
      if failed or len(running) >= workers:
        break
      jobs.remove(job)
      out = job.step.out_dir(job.ctx)
      if os.path.isdir(out) and (job.forced or job.step.name != "world") and not (
          job.step.name == "world" and config.world.dir):
        shutil.rmtree(out)  # A partial or forced step starts clean: its outputs are all its own.
      os.makedirs(out, exist_ok=True)
      if counted:  # Read by the report step when it starts: kept up to date at every start.
        timings_lib.record(workdir, timings_lib.WALL_CLOCK,
                           wall_before + time.monotonic() - started)
      elapsed = format_duration(time.monotonic() - started)
      log(f"[pipeline] {job.label}: running | {elapsed} elapsed | "
          f"ETA {eta(starting=job)}")
      # The clock starts before launch: in-process (workers=1) the step runs inside it.
      t0 = time.monotonic()
      running.append((job, launch(job.step, job.ctx, out), t0))
    if not running:
      if jobs and not failed:
        raise layout.PipelineError(f"steps {[j.label for j in jobs]} wait for steps that "
                                      "never run: the step list's needs are not in its order")
      break
    finished = [(job, handle, t0) for job, handle, t0 in running if handle.poll() is not None]
    if not finished:
      time.sleep(0.1)
      continue
    for entry in finished:
      running.remove(entry)
      job, handle, t0 = entry
      seconds = time.monotonic() - t0
      if handle.poll() != 0:
        failed.append(f"{job.label} (exit code {handle.poll()})")
        log(f"[pipeline] {job.label}: FAILED after {format_duration(seconds)}")
        continue
      if job.step.name != "world":  # The world writes its own DONE.
        with open(os.path.join(job.step.out_dir(job.ctx), layout.DONE), "w",
                  encoding="utf-8") as f:
          json.dump({"step": job.step.name, "seed": job.ctx.seed, "seconds": round(seconds, 3)},
                    f)
      waiting.discard(job.key)
      timings_lib.record(
          workdir, timings_lib.step_key(job.ctx.seed if job.step.per_seed else None, job.step.name),
          seconds)
      timings[f"{job.ctx.seed}/{job.step.name}"] = seconds
      log(f"[pipeline] {job.label}: done in {format_duration(seconds)} | "
          f"{format_duration(time.monotonic() - started)} elapsed | ETA {eta()}")
  if failed:
    raise layout.PipelineError(
        f"step {', '.join(failed)} failed: its log is above. The complete steps are kept; rerun "
        "the same command to resume from the failed step")
  return timings


Key = tuple  # (seed or None for a step run once, step name)


@dataclasses.dataclass
class _Job:
  step: steps_lib.Step
  ctx: layout.Context
  label: str
  forced: bool
  needs: set

  @property
  def key(self) -> Key:
    return (self.ctx.seed if self.step.per_seed else None, self.step.name)


def _needs(step: steps_lib.Step, ctx: layout.Context, by_name: dict[str, steps_lib.Step],
           seeds: Sequence[int]) -> set:
  """Keys of the steps `step` reads; a step run once (the report) reads every seed's."""
  out = set()
  for name in step.needs:
    if not by_name[name].per_seed:
      out.add((None, name))
    elif step.per_seed:
      out.add((ctx.seed, name))
    else:
      out.update((seed, name) for seed in seeds)
  return out


class _Done:
  """The handle of a step that ran in this process (an exception propagates from launch)."""

  def poll(self) -> int:
    return 0


def _run_here(step: steps_lib.Step, ctx: layout.Context, out: str) -> _Done:
  step.run(ctx, out)
  return _Done()


class _Pool:
  """Steps in `workers` long-lived spawned processes: each imports JAX/TF once and keeps them
  warm across steps (a process per step paid ~10 s of imports each: the quick pipeline ran
  slower with 2 of those than with 1 in-process). Spawned, not forked: no copied JAX runtime."""

  def __init__(self, workers: int):
    # Each worker's share of the CPUs: the steps mostly run two at a time (vidistill/runtime.py).
    cores = max(1, runtime.available_cores() // workers)
    # A worker ends with this process (vidistill/orphans.py): killed, it leaves none behind.
    self.executor = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
        initargs=(os.getpid(), cores))

  def __call__(self, step: steps_lib.Step, ctx: layout.Context, out: str) -> _Future:
    del out  # The worker finds it from the step, as the parent did.
    return _Future(self.executor.submit(_child_main, ctx.config.to_json(), ctx.workdir,
                                        ctx.seed, step.name))


class _Future:
  def __init__(self, future: concurrent.futures.Future):
    self.future = future

  def poll(self) -> int | None:
    if not self.future.done():
      return None
    return 0 if self.future.exception() is None else 1


def _init_worker(parent_pid: int, cores: int) -> None:
  orphans.exit_with_parent(parent_pid)
  # Before TensorFlow and JAX allocate or start a backend (vidistill/runtime.py).
  runtime.configure(split_cpu=True, cores=cores)
  # A spawned worker imports TensorFlow (through seqio) inside its first step: imported here
  # first, its C++ start-up lines go nowhere, as in the command's own process (cli.py).
  tf_quiet.import_tensorflow()


def _child_main(config_json: str, workdir: str, seed: int, name: str) -> None:
  config = ml_collections.ConfigDict(json.loads(config_json))
  if config.get("compile_cache"):
    compile_cache.enable(os.path.join(workdir, config.compile_cache))
  step = {s.name: s for s in steps_lib.build(config)}[name]
  ctx = layout.Context(config, workdir, seed)
  try:
    step.run(ctx, step.out_dir(ctx))
  except BaseException:
    traceback.print_exc()  # The parent sees only that it failed; the why goes to the log here.
    sys.stderr.flush()
    raise


Launcher = Callable[[steps_lib.Step, layout.Context, str], Any]


def step_names(config: ml_collections.ConfigDict) -> Sequence[str]:
  return [s.name for s in steps_lib.build(config)]
