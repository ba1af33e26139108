r"""`vidistill sweep`: expand a config's sweep into runs, print them or run them one by one.

    vidistill sweep --config configs/train/dual_encoder.py:quick,world=/tmp/w \
        --sweep arg.source=alt_text,pseudo --workdir /tmp/sweep --dry_run

The runs come from the config file's `get_hyper(h)` or `sweep` list (vidistill/launch/sweep.py)
crossed with every `--sweep KEY=V1,V2` given here. Each run is one `vidistill <command>` line with
its own workdir `<--workdir>/<run name>`; arguments after `--` are added to every run. The command
is the config's folder (configs/train -> train, configs/eval -> eval, configs/caption -> caption)
unless --command says otherwise. Without --dry_run the runs execute one after another, here
(--launcher=none), as N local processes each (--launcher=local --num_processes=N), or through a
launcher script (--launcher=script --launcher_script=launch/tpu_pod.sh --launcher_args="..."),
called as `<script> <launcher_args> -- <run's command>`.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Sequence

from absl import flags

from vidistill import flags_lib
from vidistill.launch import command as launch_command


def define_flags() -> None:
  if "sweep" in flags.FLAGS:
    return
  flags.DEFINE_string("config", None, "Config file and argument: `configs/train/x.py:variant,...`.")
  flags.DEFINE_string("workdir", None, "Base directory: each run writes into <workdir>/<run name>.")
  flags.DEFINE_multi_string("sweep", [], "An extra axis KEY=V1,V2,... (repeat: all combinations).")
  flags.DEFINE_string("command", None, "train | eval | caption | data (default: the config's folder).")
  flags.DEFINE_enum("launcher", "none", ["none", "local", "script"], "How each run is started.")
  flags.DEFINE_string("launcher_script", None, "--launcher=script: the script (launch/tpu_pod.sh).")
  flags.DEFINE_string("launcher_args", "", "--launcher=script: its arguments before `--`.")
  flags.DEFINE_bool("keep_going", False, "Run the remaining runs after one fails.")
  launch_command.define_flags()  # --num_processes, --dry_run, ...


def run_argv(run_cmd: Sequence[str]) -> list[str]:
  """How one run is started, as the --launcher flags say."""
  f = flags.FLAGS
  if f.launcher == "local":
    if not f.num_processes:
      raise flags_lib.UsageError("--launcher=local needs --num_processes")
    return ["vidistill", "launch", "local", f"--num_processes={f.num_processes}",
            f"--devices_per_process={f.devices_per_process}", "--", *run_cmd]
  if f.launcher == "script":
    if not f.launcher_script:
      raise flags_lib.UsageError("--launcher=script needs --launcher_script (launch/tpu_pod.sh)")
    return [f.launcher_script, *shlex.split(f.launcher_args), "--", *run_cmd]
  return list(run_cmd)


def main(argv: Sequence[str], extra: Sequence[str]) -> None:
  from vidistill.launch import local, sweep  # pylint: disable=g-import-not-at-top
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}; arguments for every run go "
                               "after `--`")
  f = flags.FLAGS
  if not f.config:
    raise flags_lib.UsageError("--config is required, e.g. configs/train/dual_encoder.py:quick")
  if not f.workdir:
    raise flags_lib.UsageError("--workdir is required: the base directory of the runs")
  try:
    runs = sweep.plan(f.config, f.workdir, axes=f.sweep, command=f.command, extra_args=extra)
  except (sweep.SweepError, ValueError) as e:
    raise flags_lib.UsageError(str(e)) from None
  print(f"# {len(runs)} run(s) of {f.config}")
  for i, r in enumerate(runs):
    print(f"# [{i}] {r.name}: {r.overrides or 'the config as it is'}")
    print(shlex.join(run_argv(r.argv)))
  if f.dry_run:
    return
  failed = []
  for i, r in enumerate(runs):
    print(f"# [{i}] starting {r.name}", flush=True)
    code = subprocess.call(local.resolve_command(run_argv(r.argv)))
    if code:
      failed.append(r.name)
      print(f"# [{i}] {r.name} failed with exit code {code}", file=sys.stderr, flush=True)
      if not f.keep_going:
        break
  if failed:
    print(f"vidistill sweep: failed runs: {failed}", file=sys.stderr)
    sys.exit(1)


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  own, extra = launch_command.split_command(argv)
  flags_lib.run_command(prog, own, __doc__, [sys.modules[__name__], launch_command],
                        lambda a: main(a, extra))
