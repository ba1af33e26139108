"""Streaming training input (Grain over ArrayRecord) against the examples held in memory.

1. examples/s of training (the miniature's stage-1 step, cpu_runtime's sizes, batches prefetched
   in a thread as the trainer does) with the input streamed from shards
   (vidistill/data/grain_source.py, records parsed in read threads) against the same examples
   from a list in memory (vidistill/train/input.py): the goal is >= 0.8. Also the input alone,
   without a model step to hide behind (the input's own cost; no goal).
2. Peak host memory (VmHWM) of a process that reads the same number of batches from a corpus 10x
   larger, streamed against held in memory, and streamed at 10x against streamed at 1x (the goal:
   flat in corpus size, <= 1.1).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from vidistill.benchmarks import report

# The model: the miniature's stage 1 at cpu_runtime's sizes ("full": the default pipeline's).
SIZES = {
    "short": dict(model="short", examples=64, batches=6, repeats=2),
    "full": dict(model="full", examples=2000, batches=30, repeats=3),
}


def write_corpus(prefix: str, count: int, m: dict, num_shards: int = 8) -> str:
  """`count` examples of the model's input shape (random frames and tokens) as ArrayRecord shards."""
  from vidistill.data import shards  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  base = rng.integers(0, 256, (m["frames"], m["res"], m["res"], 3), dtype=np.uint8)

  def examples():
    for i in range(count):
      yield {"id": f"{i:08d}", "video": np.roll(base, i, axis=2),
             "prompt_tokens": rng.integers(2, m["vocab"], m["prompt"], dtype=np.int32),
             "target_tokens": rng.integers(2, m["vocab"], m["target"], dtype=np.int32)}

  shards.write_shards(examples(), prefix, num_shards, "arrayrecord")
  return prefix


def _stream(prefix: str, batch: int, threads: int = 4):
  from vidistill.data import grain_source  # pylint: disable=g-import-not-at-top
  return grain_source.batches(grain_source.open_records(prefix), batch_size=batch, seed=0,
                              read_threads=threads)


def _in_memory(prefix: str, batch: int):
  from vidistill.data import grain_source  # pylint: disable=g-import-not-at-top
  from vidistill.train import input as input_lib  # pylint: disable=g-import-not-at-top
  rows = grain_source.open_records(prefix)
  examples = [rows[i] for i in range(len(rows))]
  return input_lib.batches(examples, batch_size=batch, seed=0)


def examples_per_s(iterator, batches: int, batch: int) -> float:
  next(iterator)  # Threads started, first records read.
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch / (time.perf_counter() - start)


def make_train_step(m: dict):
  """cpu_runtime's stage-1 update step for sizes `m`, compiled, with its state and sharding."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top
  from vidistill.benchmarks import cpu_runtime  # pylint: disable=g-import-not-at-top
  step_fn, state, mesh = cpu_runtime.stage1_step(m)
  return {"call": jax.jit(step_fn, donate_argnums=0), "state": state,
          "sharding": NamedSharding(mesh, PartitionSpec("data"))}


def train_examples_per_s(iterator, step, batches: int, batch: int) -> float:
  """The trainer's consumption: batches prepared ahead in a thread (input.prefetch), placed,
  stepped; the first step untimed. `step` (make_train_step's) carries the state on."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidistill.train import input as input_lib  # pylint: disable=g-import-not-at-top
  call, state, sharding = step["call"], step["state"], step["sharding"]
  batches_ahead = input_lib.prefetch(iterator, 2)
  state, metrics = call(state, jax.device_put(next(batches_ahead), sharding))
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(batches):
    state, metrics = call(state, jax.device_put(next(batches_ahead), sharding))
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  step["state"] = state  # The old one was donated.
  batches_ahead.close()
  return batches * batch / seconds


def read_batches(prefix: str, mode: str, batch: int, batches: int) -> None:
  """A child process's work for the memory figures: `batches` batches, streamed or in memory."""
  iterator = _stream(prefix, batch) if mode == "stream" else _in_memory(prefix, batch)
  for _ in range(batches):
    next(iterator)


def peak_rss_mb(prefix: str, mode: str, batch: int, batches: int) -> float:
  """VmHWM of a fresh Python reading the batches (through a wrapper: its only child)."""
  code = (f"from vidistill.benchmarks import streaming_input as s; "
          f"s.read_batches({prefix!r}, {mode!r}, {batch}, {batches})")
  wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(r.returncode)")
  done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-c", code],
                        capture_output=True, text=True, timeout=1800)
  if done.returncode:
    raise RuntimeError(f"the {mode} reader failed: {done.stderr[-2000:]}")
  return int(done.stdout.split("PEAK_KB")[1].split()[0]) / 1024


def run(full: bool = False) -> report.Result:
  from vidistill.benchmarks import cpu_runtime  # pylint: disable=g-import-not-at-top
  s = SIZES["full" if full else "short"]
  m = cpu_runtime.SIZES[s["model"]]
  b = m["batch"]
  figures, details = [], {"sizes": s, "model": m}
  shape = f"[{b},{m['frames']},{m['res']},{m['res']},3] + tokens"
  with tempfile.TemporaryDirectory() as tmp:
    small = write_corpus(os.path.join(tmp, "x1"), s["examples"], m)
    step = make_train_step(m)
    rates = {"stream": [], "memory": [], "train_stream": [], "train_memory": []}
    for _ in range(s["repeats"]):  # A/B alternating: the machine is shared.
      rates["train_stream"].append(train_examples_per_s(_stream(small, b), step, s["batches"], b))
      rates["train_memory"].append(train_examples_per_s(_in_memory(small, b), step, s["batches"],
                                                        b))
      rates["stream"].append(examples_per_s(_stream(small, b), s["batches"], b))
      rates["memory"].append(examples_per_s(_in_memory(small, b), s["batches"], b))
    median = {k: statistics.median(v) for k, v in rates.items()}
    details["examples_per_s"] = rates
    figures.append(report.Figure(
        "streaming_input", f"training, input streamed (Grain, 4 read threads) {shape}",
        median["train_stream"], "training, the same examples in memory", median["train_memory"],
        unit="examples/s", goal=0.8 if full else None,
        note=f"stage-1 step, vit {m['vit']}, t5 {m['t5']}; input prefetched 2 ahead"))
    figures.append(report.Figure(
        "streaming_input", f"input alone, streamed {shape}", median["stream"],
        "input alone, from a list in memory", median["memory"], unit="examples/s",
        note="no model step to hide behind: the input's own cost"))

    big = write_corpus(os.path.join(tmp, "x10"), 10 * s["examples"], m)
    peaks = {name: peak_rss_mb(prefix, mode, b, s["batches"])
             for name, prefix, mode in (("stream_x1", small, "stream"),
                                        ("stream_x10", big, "stream"),
                                        ("memory_x10", big, "memory"))}
    details["peak_rss_mb"] = peaks
    clip_mb = m["frames"] * m["res"] ** 2 * 3 / 2**20
    figures.append(report.Figure(
        "streaming_input", f"peak RSS streaming {10 * s['examples']} examples", peaks["stream_x10"],
        f"streaming {s['examples']} examples", peaks["stream_x1"], unit="MB", lower_is_better=True,
        goal=1.1 if full else None, note="flat in corpus size"))
    figures.append(report.Figure(
        "streaming_input", f"peak RSS streaming {10 * s['examples']} examples", peaks["stream_x10"],
        "the same held in memory", peaks["memory_x10"], unit="MB", lower_is_better=True,
        note=f"frames {10 * s['examples'] * clip_mb:.0f} MB decoded"))
  return report.Result("streaming_input", figures, details)
