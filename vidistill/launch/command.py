r"""`vidistill launch local`: one command as N processes on this machine (CPU collectives).

    vidistill launch local --num_processes 2 -- vidistill train \
        --config configs/train/image_pretrain.py:tiny,world=/tmp/world --workdir /tmp/s0

The processes find each other through jax.distributed on 127.0.0.1 (the VIDISTILL_* variables of
vidistill/parallel/multihost.py), exactly as the hosts of a pod do, so multi-host code paths
(per-host input, checkpoints written once, the captioning job's unit split) run on one machine.
`--dry_run` prints each process's environment and command. TPU pods and SLURM clusters:
launch/tpu_pod.sh and launch/slurm.sbatch (docs/scaling.md).
"""
from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from vidistill import flags_lib

LAUNCHERS = ("local",)


def define_flags() -> None:
  if "devices_per_process" in flags.FLAGS:
    return
  # multihost.define_flags() may have defined num_processes already.
  flags_lib.define_once(flags.DEFINE_integer, "num_processes", None, "How many processes to start.")
  flags.DEFINE_integer("devices_per_process", 1, "CPU devices each process sees "
                       "(--xla_force_host_platform_device_count).")
  flags.DEFINE_integer("port", None, "Coordinator port on 127.0.0.1 (default: a free one).")
  flags.DEFINE_float("timeout_s", None, "Stop every process after this many seconds.")
  flags_lib.define_once(flags.DEFINE_bool, "dry_run", False, "Print what would run; start nothing.")


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Launcher flags before `--`, the launched command after it."""
  argv = list(argv)
  if "--" not in argv:
    return argv, []
  i = argv.index("--")
  return argv[:i], argv[i + 1:]


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  own, command = split_command(argv)
  if own and own[0] in LAUNCHERS:
    which, own = own[0], own[1:]
  elif own and not own[0].startswith("-"):
    print(f"{prog}: error: unknown launcher {own[0]!r}; expected one of {list(LAUNCHERS)} "
          "(TPU pods and SLURM: launch/tpu_pod.sh, launch/slurm.sbatch)", file=sys.stderr)
    sys.exit(2)
  else:
    which = None

  def main(positional: Sequence[str]) -> None:
    from vidistill.launch import local  # pylint: disable=g-import-not-at-top
    if positional:
      raise flags_lib.UsageError(f"unexpected arguments {list(positional)}; the command to launch "
                                 "goes after `--`")
    if which is None:
      raise flags_lib.UsageError(f"which launcher? `{prog} local --num_processes N -- <command>`")
    f = flags.FLAGS
    if not f.num_processes:
      raise flags_lib.UsageError("--num_processes is required (>= 1)")
    try:
      if f.dry_run:
        local.resolve_command(command)
        print(local.describe(command, f.num_processes, f.devices_per_process))
        return
      result = local.launch(command, f.num_processes, devices_per_process=f.devices_per_process,
                            port=f.port, timeout_s=f.timeout_s)
    except local.LaunchError as e:
      raise flags_lib.UsageError(str(e)) from None
    if result.returncode:
      print(f"{prog}: process exit codes {list(result.returncodes)}", file=sys.stderr)
      sys.exit(result.returncode)

  flags_lib.run_command(prog, own, __doc__, [sys.modules[__name__]], main)
