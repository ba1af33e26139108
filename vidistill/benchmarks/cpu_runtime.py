"""The CPU levers of vidistill/runtime.py and the multi-step loop, each as an in-run ratio.

    allocator   the tuned malloc vs glibc's defaults (VIDISTILL_MALLOC=system), one process each
    layout      one single-threaded CPU device per core vs XLA's one device, one training process
    pair        the same, two training processes at once (the pipeline's two workers)
    multi-step  k train steps per compiled call (lax.scan) vs one, in one process

The step is the trainer's (vidistill/train/step.py) for stage 1 (the LM frozen), with the batch
sharded over the mesh's data axis. Allocator and layout are process-wide, so each side of those
ratios runs in a fresh child process (`python -m vidistill.benchmarks.cpu_runtime --child ...`
prints one JSON line). Besides examples/s (wall clock, which other load on a shared machine moves)
every child reports the CPU seconds and minor page faults its steps cost.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from vidistill import runtime

# "full": the default pipeline's stage 1 (ViT nu/16 + T5 tiny, 8 frames of 32 px, batch 64).
SIZES = {
    "short": dict(vit="mu/8", t5="tiny", frames=2, res=32, batch=8, vocab=128, prompt=8,
                  target=8, spatial_tokens=4, steps=9, k=3),
    "full": dict(vit="nu/16", t5="tiny", frames=8, res=32, batch=64, vocab=1024, prompt=16,
                 target=32, spatial_tokens=4, steps=48, k=8),  # steps: a multiple of k.
}


def measure(size: str, *, steps_per_call: int = 1) -> dict[str, Any]:
  """Runs s["steps"] train steps on one batch, `steps_per_call` a call (lax.scan when > 1), and
  times all calls but the first; the loss is the last step's."""
  import jax  # pylint: disable=g-import-not-at-top  (after the child's runtime settings)
  from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top
  from vidistill.benchmarks import mfu  # pylint: disable=g-import-not-at-top
  from vidistill.train import multistep  # pylint: disable=g-import-not-at-top

  s = SIZES[size]
  k = steps_per_call
  step_fn, state, mesh = stage1_step(s)
  batch = mfu.example_batch("vlm", s)
  if k == 1:
    call = jax.jit(step_fn, donate_argnums=0)
    inputs = jax.device_put(batch, NamedSharding(mesh, PartitionSpec("data")))
  else:  # The trainer's multi-step call, the same batch k times: [k, B, ...].
    many = multistep.scan_steps(step_fn)

    def call(state, batches):
      state, metrics = many(state, batches)
      return state, jax.tree.map(lambda x: x[-1], metrics)
    call = jax.jit(call, donate_argnums=0)
    inputs = jax.device_put(multistep.stack([batch] * k), multistep.stacked_sharding(
        NamedSharding(mesh, PartitionSpec("data"))))
  # s["steps"] steps in all, the first call untimed (it compiles): the last loss is comparable
  # between step counts per call.
  calls = s["steps"] // k - 1
  state, metrics = call(state, inputs)
  jax.block_until_ready(metrics)
  before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
  for _ in range(calls):
    state, metrics = call(state, inputs)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_SELF)
  n = calls * k
  return {"examples_per_s": n * s["batch"] / seconds, "steps": n, "devices": mesh.size,
          "cpu_s_per_step": (after.ru_utime + after.ru_stime - before.ru_utime
                             - before.ru_stime) / n,
          "faults_per_step": (after.ru_minflt - before.ru_minflt) / n,
          "loss": float(metrics["loss"])}


def stage1_step(s: dict[str, Any]):
  """Stage 1's update step (the LM frozen) for sizes `s`, its initial state (replicated over a
  data-parallel mesh of every device) and the mesh: (step_fn, state, mesh)."""
  import jax  # pylint: disable=g-import-not-at-top  (after a child's runtime settings)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top
  from vidistill.benchmarks import mfu  # pylint: disable=g-import-not-at-top
  from vidistill.models import build  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import state as state_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import step as step_lib  # pylint: disable=g-import-not-at-top
  model = build.build(mfu.vlm_config(s), vocab_size=s["vocab"], dtype="float32")
  params = mfu.init_params(model, jax.tree.map(jnp.asarray, mfu.example_batch("vlm", s)))
  tx = optax.adamw(1e-3)
  frozen = jax.tree_util.tree_map_with_path(
      lambda path, _: jax.tree_util.keystr(path).startswith("['t5']"), params)
  step_fn = step_lib.make_train_step(model, tx, optax.constant_schedule(1e-3), frozen,
                                     accum_steps=1, compute_dtype=jnp.float32,
                                     on_nonfinite="skip")
  mesh = mesh_lib.make_mesh({"data": -1})
  state = jax.device_put(
      state_lib.new_state(params, tx.init(params), jax.random.key_data(jax.random.key(1))),
      NamedSharding(mesh, PartitionSpec()))
  return step_fn, state, mesh


def _child_env(malloc: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith("VIDISTILL_")}
  env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")
  env[runtime.MALLOC_ENV] = malloc
  return env


def _children(size: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Starts one child per entry of `runs` at once (malloc, split, cores, steps_per_call)."""
  procs = []
  for r in runs:
    cmd = [sys.executable, "-m", "vidistill.benchmarks.cpu_runtime", "--child", size,
           "--cores", str(r.get("cores", 0)), "--steps_per_call", str(r.get("k", 1))]
    cmd += ["--split"] if r.get("split") else []
    procs.append(subprocess.Popen(cmd, env=_child_env(r.get("malloc", "tuned")),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  out = []
  for proc in procs:
    stdout, stderr = proc.communicate()
    if proc.returncode:
      raise RuntimeError(f"cpu_runtime child failed ({proc.returncode}):\n{stderr[-3000:]}")
    out.append(json.loads(stdout.strip().splitlines()[-1]))
  return out


def run(full: bool = False) -> "report.Result":
  from vidistill.benchmarks import report  # pylint: disable=g-import-not-at-top
  size = "full" if full else "short"
  s = SIZES[size]
  cores = runtime.available_cores()
  half = max(1, cores // 2)
  # One at a time, each lever's two sides one after the other (a shared machine's load drifts).
  system, tuned = (_children(size, [dict(malloc=m)])[0] for m in ("system", "tuned"))
  split = _children(size, [dict(split=True)])[0]
  pair_one = _children(size, [{}, {}])
  pair_split = _children(size, [dict(split=True, cores=half)] * 2)
  multi = _children(size, [dict(split=True, k=s["k"])])[0]
  single = split  # The same settings at one step per call.
  what = (f"stage-1 step, ViT {s['vit']} + T5 {s['t5']}, batch {s['batch']} x {s['frames']} "
          f"frames {s['res']}px")
  figures = [
      report.Figure("cpu_runtime", "examples/s, tuned malloc", tuned["examples_per_s"],
                    "glibc defaults", system["examples_per_s"], unit="examples/s",
                    goal=1.5 if full else None,
                    note=f"{what}; page faults a step {tuned['faults_per_step']:.0f} vs "
                         f"{system['faults_per_step']:.0f}, CPU s a step "
                         f"{tuned['cpu_s_per_step']:.3f} vs {system['cpu_s_per_step']:.3f}"),
      report.Figure("cpu_runtime", f"examples/s, {split['devices']} single-threaded CPU devices",
                    split["examples_per_s"], "one CPU device", tuned["examples_per_s"],
                    unit="examples/s", note=f"one training process on {cores} cores"),
      report.Figure("cpu_runtime", f"examples/s of 2 processes, {pair_split[0]['devices']} "
                    "single-threaded device(s) each",
                    sum(r["examples_per_s"] for r in pair_split), "one CPU device each",
                    sum(r["examples_per_s"] for r in pair_one), unit="examples/s",
                    note=f"two training processes at once on {cores} cores (pipeline workers)"),
      report.Figure("cpu_runtime", f"examples/s, {s['k']} steps per compiled call",
                    multi["examples_per_s"], "one step per call", single["examples_per_s"],
                    unit="examples/s", note=f"lax.scan over the step, {split['devices']} devices"),
  ]
  details = {"sizes": s, "cores": cores, "system": system, "tuned": tuned, "split": split,
             "pair_one": pair_one, "pair_split": pair_split, "multi_step": multi}
  return report.Result("cpu_runtime", figures, details)


def _child_main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--child", choices=list(SIZES), required=True)
  parser.add_argument("--split", action="store_true")
  parser.add_argument("--cores", type=int, default=0)
  parser.add_argument("--steps_per_call", type=int, default=1)
  args = parser.parse_args(argv)
  applied = runtime.configure(split_cpu=args.split, cores=args.cores or None)
  out = measure(args.child, steps_per_call=args.steps_per_call)
  print(json.dumps({**out, **{k: v for k, v in applied.items() if v is not None}}))


if __name__ == "__main__":
  _child_main(sys.argv[1:])
