"""`vidistill bench`: speed and memory benchmarks, each figure a ratio against an in-run baseline.

    vidistill bench [NAME ...] --out DIR [--full]
    python -m vidistill.benchmarks [NAME ...] --out DIR [--full]

NAMEs (default: all): peak, mfu, decode, decode_gemma, input_pipeline, streaming_input,
contrastive_memory,
scaling, pipeline_overlap, cpu_runtime. Without --full each runs a short mode (seconds: what CI
runs so the benchmarks cannot rot); --full is the mode docs/performance.md reports. Writes
DIR/results.json and DIR/results.md (a markdown table: value, baseline, ratio, goal). Absolute
times vary between runs on a shared machine, so every figure is a ratio of two numbers measured
in the same run.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from absl import flags
from absl import logging

from vidistill import flags_lib

# One explicit table: name -> module with `run(full: bool) -> report.Result`.
BENCHMARKS = {
    "peak": "vidistill.benchmarks.peak",
    "mfu": "vidistill.benchmarks.mfu",
    "decode": "vidistill.benchmarks.decode",
    "decode_gemma": "vidistill.benchmarks.decode_gemma",
    "input_pipeline": "vidistill.benchmarks.input_pipeline",
    "streaming_input": "vidistill.benchmarks.streaming_input",
    "contrastive_memory": "vidistill.benchmarks.contrastive_memory",
    "scaling": "vidistill.benchmarks.scaling",
    "pipeline_overlap": "vidistill.benchmarks.pipeline_overlap",
    "cpu_runtime": "vidistill.benchmarks.cpu_runtime",
}


def define_flags() -> None:
  if "full" in flags.FLAGS:
    return
  flags.DEFINE_string("out", None, "Directory for results.json and results.md (created).")
  flags.DEFINE_bool("full", False, "Full mode (minutes; the docs/performance.md table) instead "
                    "of the short CI mode (seconds).")


def check_names(names: Sequence[str]) -> list[str]:
  """The benchmarks to run, in table order; all when `names` is empty."""
  unknown = [n for n in names if n not in BENCHMARKS]
  if unknown:
    raise flags_lib.UsageError(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
  return [n for n in BENCHMARKS if not names or n in names]


def run_benchmarks(names: Sequence[str], out: str, *, full: bool = False, command: str = ""):
  """Runs the named benchmarks and writes their results; returns (results, json, md paths)."""
  from vidistill.benchmarks import report  # pylint: disable=g-import-not-at-top
  results = []
  for name in check_names(names):
    logging.info("bench: %s (%s mode)", name, "full" if full else "short")
    results.append(importlib.import_module(BENCHMARKS[name]).run(full=full))
    report.write(results, out, command=command, mode="full" if full else "short")
  json_path, md_path = report.write(results, out, command=command,
                                    mode="full" if full else "short")
  return results, json_path, md_path


def main(argv: Sequence[str]) -> None:
  out = flags.FLAGS.out
  if not out:
    raise flags_lib.UsageError("--out is required: the directory results.json/results.md go to")
  names = check_names(argv)
  command = " ".join(["vidistill bench", *argv, f"--out {out}"] +
                     (["--full"] if flags.FLAGS.full else []))
  _, _, md_path = run_benchmarks(names, out, full=flags.FLAGS.full, command=command)
  with open(md_path, encoding="utf-8") as f:
    print(f.read())


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  flags_lib.run_command(prog, argv, __doc__, [sys.modules[__name__]], main)
