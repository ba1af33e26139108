"""N processes of one command on this machine, joined by jax.distributed over 127.0.0.1.

    vidistill launch local --num_processes 2 -- vidistill train --config ... --workdir /tmp/run

Each process gets the VIDISTILL_* variables vidistill/parallel/multihost.py reads (coordinator
127.0.0.1:<free port>, its process id, the process count) and JAX's CPU backend with gloo
collectives, so cross-process all-reduces run on a CPU-only machine: the code path of a multi-host
pod, testable here. Output lines are prefixed with `[p<id>] `. When one process fails the others are
stopped (they would otherwise wait for it at the next collective until a timeout).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from typing import Mapping, Sequence, TextIO

from vidistill.parallel import multihost


class LaunchError(ValueError):
  """A launcher invocation that cannot run (no command, a bad process count)."""


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def resolve_command(command: Sequence[str]) -> list[str]:
  """`vidistill ...` runs as `<this python> -m vidistill.cli ...` (the same install); others as-is."""
  command = list(command)
  if not command:
    raise LaunchError("no command given: put it after `--`, e.g. `vidistill launch local "
                      "--num_processes 2 -- vidistill train --config ... --workdir DIR`")
  if command[0] == "vidistill":
    return [sys.executable, "-m", "vidistill.cli"] + command[1:]
  return command


def process_env(process_id: int, num_processes: int, coordinator: str, *,
                devices_per_process: int = 1, base: Mapping[str, str] | None = None
                ) -> dict[str, str]:
  """The environment of process `process_id`: multihost settings + a CPU backend with gloo."""
  if not 0 <= process_id < num_processes:
    raise LaunchError(f"process_id={process_id} is outside [0, {num_processes})")
  env = dict(os.environ if base is None else base)
  p = multihost.ENV_PREFIX
  env.update({p + "COORDINATOR_ADDRESS": coordinator, p + "NUM_PROCESSES": str(num_processes),
              p + "PROCESS_ID": str(process_id)})
  env["JAX_PLATFORMS"] = "cpu"
  # Without gloo, JAX's CPU client has no cross-process collectives and a psum over two
  # processes fails at compile time.
  env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  flags.append(f"--xla_force_host_platform_device_count={devices_per_process}")
  env["XLA_FLAGS"] = " ".join(flags)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  return env


@dataclasses.dataclass(frozen=True)
class LocalResult:
  returncodes: tuple[int, ...]

  @property
  def returncode(self) -> int:
    """0 when every process succeeded, else the first non-zero code (in process order)."""
    return next((c for c in self.returncodes if c != 0), 0)


def launch(command: Sequence[str], num_processes: int, *, devices_per_process: int = 1,
           port: int | None = None, timeout_s: float | None = None,
           out: TextIO | None = None) -> LocalResult:
  """Runs `command` as `num_processes` processes; returns their exit codes."""
  if num_processes < 1:
    raise LaunchError(f"--num_processes={num_processes} must be >= 1")
  if devices_per_process < 1:
    raise LaunchError(f"--devices_per_process={devices_per_process} must be >= 1")
  argv = resolve_command(command)
  out = out or sys.stdout
  coordinator = f"127.0.0.1:{port or free_port()}"
  lock = threading.Lock()
  procs, pumps = [], []
  for i in range(num_processes):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=process_env(i, num_processes, coordinator,
                                            devices_per_process=devices_per_process))
    pump = threading.Thread(target=_pump, args=(proc.stdout, f"[p{i}] ", out, lock), daemon=True)
    pump.start()
    procs.append(proc)
    pumps.append(pump)
  deadline = None if timeout_s is None else time.monotonic() + timeout_s
  codes: list[int | None] = [None] * num_processes
  while any(c is None for c in codes):
    for i, proc in enumerate(procs):
      if codes[i] is None:
        codes[i] = proc.poll()
    failed = any(c not in (None, 0) for c in codes)
    late = deadline is not None and time.monotonic() > deadline
    if (failed or late) and any(c is None for c in codes):
      for i, proc in enumerate(procs):
        if codes[i] is None:
          proc.terminate()
      for i, proc in enumerate(procs):
        if codes[i] is None:
          try:
            codes[i] = proc.wait(timeout=10)
          except subprocess.TimeoutExpired:
            proc.kill()
            codes[i] = proc.wait()
      if late and not failed:
        with lock:
          print(f"launch local: timed out after {timeout_s} s; stopped every process", file=out)
    time.sleep(0.05)
  for pump in pumps:
    pump.join(timeout=5)
  return LocalResult(tuple(int(c) for c in codes))


def _pump(stream: TextIO, prefix: str, out: TextIO, lock: threading.Lock) -> None:
  for line in stream:
    with lock:
      out.write(prefix + line)
      out.flush()


def describe(command: Sequence[str], num_processes: int, devices_per_process: int = 1) -> str:
  """One line per process: its environment and command (what --dry_run prints)."""
  lines = []
  for i in range(num_processes):
    env = process_env(i, num_processes, "127.0.0.1:<port>", devices_per_process=devices_per_process,
                      base={})
    keys = sorted(k for k in env if k.startswith(multihost.ENV_PREFIX)) + ["JAX_PLATFORMS"]
    lines.append(" ".join(f"{k}={shlex.quote(env[k])}" for k in keys) + " " +
                 shlex.join(list(command)))
  return "\n".join(lines)
