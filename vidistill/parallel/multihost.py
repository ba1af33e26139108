"""Multi-process start-up: `jax.distributed.initialize` from flags, environment, or cluster.

Order of precedence for each setting: command-line flag > VIDISTILL_* environment variable >
JAX's own cluster detection (TPU pods, SLURM, Open MPI, Kubernetes) > single process. A single
process (the default on a workstation or in tests) calls nothing.

  --coordinator_address / VIDISTILL_COORDINATOR_ADDRESS   host:port of process 0
  --num_processes       / VIDISTILL_NUM_PROCESSES
  --process_id          / VIDISTILL_PROCESS_ID
  --local_device_ids    / VIDISTILL_LOCAL_DEVICE_IDS      e.g. "0,1" (one process per GPU subset)
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import jax
from absl import flags
from absl import logging

ENV_PREFIX = "VIDISTILL_"

# Environment variables by which JAX recognises a managed multi-process cluster by itself.
_CLUSTER_MARKERS = (
    ("SLURM_NTASKS", lambda v: int(v) > 1),
    ("OMPI_COMM_WORLD_SIZE", lambda v: int(v) > 1),
    ("TPU_WORKER_HOSTNAMES", lambda v: "," in v),
    ("MEGASCALE_COORDINATOR_ADDRESS", bool),
)


class MultihostError(ValueError):
  """Inconsistent multi-process settings."""


@dataclasses.dataclass(frozen=True)
class DistributedSetup:
  """What to pass to `jax.distributed.initialize`; `mode` says why."""
  mode: str  # "single" | "explicit" | "auto"
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None
  local_device_ids: tuple[int, ...] | None = None


def define_flags() -> None:
  """Defines the multi-host flags (idempotent: safe when several commands import this)."""
  if "coordinator_address" in flags.FLAGS:
    return
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
  flags.DEFINE_integer("num_processes", None, "Total number of processes (multi-process runs).")
  flags.DEFINE_integer("process_id", None, "Index of this process in [0, num_processes).")
  flags.DEFINE_string("local_device_ids", None, "Comma-separated local device ids of this process.")


def _int(value: str | int | None, name: str) -> int | None:
  if value is None or value == "":
    return None
  try:
    return int(value)
  except ValueError:
    raise MultihostError(f"{name}={value!r} is not an integer") from None


def resolve_setup(coordinator_address: str | None = None, num_processes: int | None = None,
                  process_id: int | None = None, local_device_ids: str | None = None,
                  env: Mapping[str, str] | None = None) -> DistributedSetup:
  """Pure resolution of the settings (flags first, then VIDISTILL_* env, then cluster markers)."""
  env = os.environ if env is None else env
  address = coordinator_address or env.get(ENV_PREFIX + "COORDINATOR_ADDRESS") or None
  n = num_processes if num_processes is not None else _int(
      env.get(ENV_PREFIX + "NUM_PROCESSES"), ENV_PREFIX + "NUM_PROCESSES")
  pid = process_id if process_id is not None else _int(
      env.get(ENV_PREFIX + "PROCESS_ID"), ENV_PREFIX + "PROCESS_ID")
  ids_text = local_device_ids or env.get(ENV_PREFIX + "LOCAL_DEVICE_IDS") or None
  ids = None
  if ids_text:
    ids = tuple(_int(s.strip(), "local_device_ids") for s in str(ids_text).split(",") if s.strip())

  if address or n is not None or pid is not None:
    missing = [name for name, v in (("coordinator_address", address), ("num_processes", n),
                                    ("process_id", pid)) if v is None]
    if missing and n != 1:
      raise MultihostError(
          f"multi-process settings are incomplete: missing {missing} (got coordinator_address="
          f"{address!r}, num_processes={n!r}, process_id={pid!r}); set all three via flags or "
          f"{ENV_PREFIX}* variables, or none to let JAX detect the cluster")
    if n is not None and n < 1:
      raise MultihostError(f"num_processes={n} must be >= 1")
    if n is not None and pid is not None and not 0 <= pid < n:
      raise MultihostError(f"process_id={pid} is outside [0, num_processes={n})")
    if n == 1:
      return DistributedSetup("single")
    return DistributedSetup("explicit", address, n, pid, ids)
  for name, is_multi in _CLUSTER_MARKERS:
    value = env.get(name)
    if value:
      try:
        if is_multi(value):
          return DistributedSetup("auto", local_device_ids=ids)
      except ValueError:
        continue
  return DistributedSetup("single")


def initialize(setup: DistributedSetup | None = None) -> DistributedSetup:
  """Calls `jax.distributed.initialize` as `setup` says (from flags + env when None).

  Call once, before any other JAX call touches devices.
  """
  if setup is None:
    f = flags.FLAGS
    define_flags()
    parsed = f.is_parsed()
    setup = resolve_setup(
        f.coordinator_address if parsed else None, f.num_processes if parsed else None,
        f.process_id if parsed else None, f.local_device_ids if parsed else None)
  if setup.mode == "single":
    return setup
  kwargs = {}
  if setup.mode == "explicit":
    kwargs = dict(coordinator_address=setup.coordinator_address,
                  num_processes=setup.num_processes, process_id=setup.process_id)
  if setup.local_device_ids is not None:
    kwargs["local_device_ids"] = list(setup.local_device_ids)
  jax.distributed.initialize(**kwargs)
  logging.info("jax.distributed initialised (%s): process %d of %d, %d local / %d global devices",
               setup.mode, jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return setup


def detach() -> None:
  """Leaves the distributed runtime once this process's devices are set up.

  For jobs whose processes never compute together (captioning: each process runs the model on
  its own devices): after this, a process that dies takes no other down with it, and none waits
  for it at exit. JAX's runtime would abort the others (or hang at its shutdown barrier for
  minutes) when a process dies; a job that detaches watches its peers itself.
  """
  if jax.process_count() > 1:  # Also creates the backend, with the distributed client, first.
    jax.distributed.shutdown()
