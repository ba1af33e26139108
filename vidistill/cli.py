"""The `vidistill` command: one entry point, one subcommand per stage of the method.

    vidistill data synth    --config configs/data/synthetic.py:tiny --workdir /tmp/world
    vidistill train         --config configs/train/visual_adaptation.py:tiny --workdir /tmp/run
    vidistill caption | eval | pipeline | bench ...
    vidistill <command> --help

Commands are listed in one explicit table (no import-time registry): each entry names the module
that defines the command's flags (`define_flags()`) and its `main(argv)`. The module is imported only
when its command runs, so `vidistill --help` is instant and TensorFlow starts only when needed.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from typing import Sequence

from vidistill import __version__
from vidistill import runtime
from vidistill import tf_quiet

# TensorFlow (pulled in by seqio/tfds) prints pages of C++ start-up logs; users asked for none.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclasses.dataclass(frozen=True)
class Command:
  module: str  # Defines `define_flags()` and `run(prog, argv)`; imported when the command runs.
  summary: str


COMMANDS: dict[str, Command] = {
    "data": Command("vidistill.data.command", "make the synthetic video world; inspect or convert data"),
    "train": Command("vidistill.train.command", "train one stage of the method (image pretrain, "
                     "visual/language adaptation, dual encoder)"),
    "caption": Command("vidistill.caption.command", "pseudo-caption unlabeled videos with an adapted"
                       " VLM, multi-host and resumable, exactly once"),
    "eval": Command("vidistill.eval.command", "evaluate a checkpoint: retrieval, captioning, QA, "
                    "zero-shot classification"),
    "pipeline": Command("vidistill.pipeline.command", "run the whole method end to end on the "
                        "synthetic world and write a report"),
    "launch": Command("vidistill.launch.command", "run a vidistill command as N local processes "
                      "with jax.distributed (the multi-host code path on one machine)"),
    "sweep": Command("vidistill.launch.sweep_command", "expand a config's sweep into runs; "
                     "--dry_run prints them"),
    "bench": Command("vidistill.benchmarks.command", "speed and memory benchmarks, as ratios "
                     "against in-run baselines"),
}


# Commands whose process mostly trains (a data-parallel mesh over its CPU devices): they get one
# single-threaded CPU device per core (vidistill/runtime.py); the others keep XLA's one device.
SPLIT_CPU = ("train",)


def _usage() -> str:
  width = max(len(n) for n in COMMANDS)
  lines = [__doc__.strip().splitlines()[0], "", "usage: vidistill <command> [flags]", "", "commands:"]
  for name, cmd in COMMANDS.items():
    lines.append(f"  {name:<{width}}  {cmd.summary}")
  lines += ["", "`vidistill <command> --help` explains a command and its flags."]
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name in ("--version", "version"):
    print(__version__)
    return
  cmd = COMMANDS.get(name)
  if cmd is None:
    print(f"vidistill: unknown command {name!r}; expected one of: {', '.join(COMMANDS)}",
          file=sys.stderr)
    sys.exit(2)
  if not any(a in ("-h", "--help") for a in argv[2:]):
    try:
      # Before anything allocates or JAX starts its backend: both settings are read once.
      runtime.configure(split_cpu=name in SPLIT_CPU)
    except runtime.SettingError as e:
      print(f"vidistill {name}: {e}", file=sys.stderr)
      sys.exit(2)
    tf_quiet.import_tensorflow()
  module = importlib.import_module(cmd.module)
  module.run(f"vidistill {name}", argv[2:])


if __name__ == "__main__":
  main()
