"""Process-wide CPU settings, applied first thing in every process vidistill starts.

    from vidistill import runtime
    runtime.configure(split_cpu=True)   # before JAX creates its backend (first device use)

The command line (vidistill.cli), the pipeline's worker processes and tests/conftest.py call it, so
no user has to export anything. Both settings belong to the process, not to a config: glibc and
XLA read them once.

malloc (glibc; `VIDISTILL_MALLOC=system` keeps glibc's defaults). A train step's XLA scratch
buffer (~134 MB for the default pipeline's stage 1 at batch 64) is freed and allocated again
every step; glibc serves an allocation that large with fresh mmap'd pages, which the kernel
zero-fills page by page. One arena whose memory is never handed back (M_ARENA_MAX=1,
M_MMAP_MAX=0, a 2 GiB trim threshold) reuses the pages: 15x fewer page faults and 1.45x less
CPU time a step (docs/experiments.md, 2026-12-06 b). The cost is that the process keeps its peak
heap until it exits. `mallopt` works in the calling process, so no re-exec is needed.

CPU devices (`VIDISTILL_CPU_DEVICES=N` forces N). XLA's one CPU device runs an op's pieces on a
thread pool; on a few cores, one single-threaded device per core with the batch split over them
(the trainer's mesh takes every device on its data axis) kept the cores busier, and two training
processes sharing 2 cores (the pipeline's workers) ran faster with one single-threaded device each
than with two thread pools competing (docs/performance.md). A process that runs one un-sharded
program at a time (decoding, evaluation) would use a single core of such a layout, so only training
asks for it (`split_cpu`; a pipeline worker with its share of the cores). An XLA_FLAGS that already
names the device count or the eigen threading is the user's choice and is left alone.

JAX platforms. With libtpu installed (the `tpu` extra, for `vidistill train --compile_topology`)
JAX tries to start a TPU backend in every process, also on a host without TPU chips: libtpu then
prints its start-up errors on the console and takes /tmp/libtpu_lockfile, so the next process's
attempt fails with another message. On a host with neither TPU chips nor GPUs, JAX_PLATFORMS=cpu
is set (libtpu still compiles for abstract topologies); a JAX_PLATFORMS already set is left alone.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys

MALLOC_ENV = "VIDISTILL_MALLOC"
DEVICES_ENV = "VIDISTILL_CPU_DEVICES"
_MALLOC_CHOICES = ("tuned", "system")

# glibc's malloc.h parameter numbers.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
# mallopt takes an int: the largest trim threshold it can hold (2 GiB), far above a step's buffers.
_MALLOPT = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
_auto_devices: int | None = None  # Set by set_cpu_devices in this process.


class SettingError(ValueError):
  """A VIDISTILL_* environment variable with a value this module does not know."""


def configure(*, split_cpu: bool = False, cores: int | None = None) -> dict[str, object]:
  """Applies the malloc settings, and with `split_cpu` the CPU device layout for `cores` cores
  (default: the CPUs this process may run on). Returns what was set, for logs and benchmarks."""
  out: dict[str, object] = {"malloc": tune_malloc(), "cpu_only": keep_jax_on_cpu_without_chips()}
  if split_cpu:
    out["cpu_devices"] = set_cpu_devices(cores)
  return out


def tune_malloc() -> bool:
  """Sets glibc's malloc to one arena that keeps its pages; False where it does not apply
  (VIDISTILL_MALLOC=system, not glibc, or mallopt refused a value)."""
  choice = os.environ.get(MALLOC_ENV, "tuned") or "tuned"
  if choice not in _MALLOC_CHOICES:
    raise SettingError(f"{MALLOC_ENV}={choice!r} is not one of {', '.join(_MALLOC_CHOICES)}; "
                       f"unset it for the tuned allocator")
  if choice == "system" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement  (glibc, not musl)
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  return all(mallopt(param, value) == 1 for param, value in _MALLOPT)


_GOOGLE_PCI_VENDOR = "0x1ae0"  # TPU chips (what JAX's own hardware check looks for).


def accelerators_present(root: str = "/") -> bool:
  """Whether this host shows a TPU chip (a Google PCI device or /dev/accel*, /dev/vfio) or a GPU
  (NVIDIA or AMD device nodes)."""
  for vendor in glob.glob(os.path.join(root, "sys/bus/pci/devices/*/vendor")):
    try:
      with open(vendor, encoding="ascii") as f:
        if f.read().strip() == _GOOGLE_PCI_VENDOR:
          return True
    except OSError:
      continue
  return any(glob.glob(os.path.join(root, "dev", pattern))
             for pattern in ("accel*", "vfio/[0-9]*", "nvidia[0-9]*", "kfd"))


def keep_jax_on_cpu_without_chips(root: str = "/") -> bool:
  """Sets JAX_PLATFORMS=cpu when libtpu is installed on a host with no accelerator; True if set."""
  if "JAX_PLATFORMS" in os.environ or importlib.util.find_spec("libtpu") is None:
    return False
  if accelerators_present(root):
    return False
  os.environ["JAX_PLATFORMS"] = "cpu"
  return True


def available_cores() -> int:
  """CPUs this process may run on (its affinity mask where the OS has one)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def cpu_device_flags(cores: int) -> list[str]:
  """XLA flags for `cores` cores: one single-threaded CPU device per core."""
  cores = max(1, cores)
  return ([f"{_DEVICE_COUNT_FLAG}={cores}"] if cores > 1 else []) + [f"{_EIGEN_FLAG}=false"]


def set_cpu_devices(cores: int | None = None) -> int | None:
  """Adds the CPU device layout to XLA_FLAGS (read when JAX creates its CPU backend); returns the
  device count set, None when left alone (the user's XLA_FLAGS chose)."""
  forced = os.environ.get(DEVICES_ENV, "")
  if forced:
    try:
      cores = int(forced)
      if cores < 1:
        raise ValueError
    except ValueError:
      raise SettingError(f"{DEVICES_ENV}={forced!r} is not a positive integer (the CPU devices "
                         "of a training process); unset it for one per core") from None
  xla_flags = os.environ.get("XLA_FLAGS", "")
  if _DEVICE_COUNT_FLAG in xla_flags or _EIGEN_FLAG in xla_flags:
    return None
  cores = max(1, available_cores() if cores is None else cores)
  os.environ["XLA_FLAGS"] = " ".join([xla_flags, *cpu_device_flags(cores)]).strip()
  global _auto_devices
  _auto_devices = cores
  return cores


def auto_cpu_devices() -> int | None:
  """The CPU device count set_cpu_devices chose in this process; None when nobody here did (the
  user's or a parent's XLA_FLAGS decided, and a trainer must use every device it was given)."""
  return _auto_devices
