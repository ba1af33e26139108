"""Tests for vidistill/runtime.py: malloc settings and the CPU device layout, in fresh processes
(both are read once per process)."""
import json
import os
import subprocess
import sys

import jax
import pytest

from vidistill import runtime
from vidistill.train import trainer

# Allocates, fills and frees a 64 MiB buffer 20 times (through malloc itself: numpy would ask for
# huge pages); prints the minor page faults.
_FAULTS = """
import ctypes, json, resource
from vidistill import runtime
applied = runtime.tune_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
  p = libc.malloc(64 << 20)
  ctypes.memset(p, 1, 64 << 20)
  libc.free(p)
print(json.dumps([applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
"""


def _python(code, **env):
  base = {k: v for k, v in os.environ.items() if not k.startswith("VIDISTILL_")}
  proc = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True,
                        text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_malloc_reuses_pages_that_glibc_would_map_afresh():
  applied, tuned = _python(_FAULTS)
  not_applied, system = _python(_FAULTS, VIDISTILL_MALLOC="system")
  assert applied and not not_applied
  # 20 x 16,384 pages of 4 KiB: glibc maps (and the kernel zero-fills) each buffer anew; tuned,
  # the first buffer's pages are reused.
  assert system > 20 * 16384 * 0.9
  assert tuned < 2 * 16384


def test_bad_settings_name_the_variable(monkeypatch):
  monkeypatch.setenv(runtime.MALLOC_ENV, "jemalloc")
  with pytest.raises(runtime.SettingError, match="VIDISTILL_MALLOC='jemalloc'"):
    runtime.tune_malloc()
  monkeypatch.setenv(runtime.DEVICES_ENV, "two")
  with pytest.raises(runtime.SettingError, match="VIDISTILL_CPU_DEVICES='two'"):
    runtime.set_cpu_devices()


def test_cli_reports_a_bad_setting_in_one_line_with_exit_2():
  env = {**os.environ, runtime.MALLOC_ENV: "fast"}
  proc = subprocess.run([sys.executable, "-m", "vidistill.cli", "train", "--workdir", "/nowhere"],
                        env=env, capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip() == ("vidistill train: VIDISTILL_MALLOC='fast' is not one of tuned, "
                                 "system; unset it for the tuned allocator")


_LAYOUT = """
import json, os
from vidistill import runtime
set_to = runtime.set_cpu_devices({cores})
import jax
print(json.dumps([set_to, jax.device_count(), os.environ.get("XLA_FLAGS", "")]))
"""


def test_cpu_layout_one_single_threaded_device_per_core():
  set_to, count, flags = _python(_LAYOUT.format(cores=2), XLA_FLAGS="", JAX_PLATFORMS="cpu")
  assert set_to == count == 2
  assert "--xla_cpu_multi_thread_eigen=false" in flags.split()
  set_to, count, flags = _python(_LAYOUT.format(cores=1), XLA_FLAGS="", JAX_PLATFORMS="cpu")
  assert set_to == count == 1 and flags == "--xla_cpu_multi_thread_eigen=false"
  set_to, count, _ = _python(_LAYOUT.format(cores=4), XLA_FLAGS="", JAX_PLATFORMS="cpu",
                             VIDISTILL_CPU_DEVICES="3")
  assert set_to == count == 3


def test_users_xla_flags_win():
  user = "--xla_force_host_platform_device_count=5"
  set_to, count, flags = _python(_LAYOUT.format(cores=2), XLA_FLAGS=user, JAX_PLATFORMS="cpu")
  assert (set_to, count, flags) == (None, 5, user)


def test_trainer_mesh_uses_the_devices_that_split_the_batch(monkeypatch):
  shape = {"data": -1, "fsdp": 1, "model": 1}
  assert jax.device_count() == 8  # tests/conftest.py
  monkeypatch.setattr(runtime, "_auto_devices", None)
  assert trainer._make_mesh(shape, 12).size == 8  # The user's layout: the trainer's error.
  monkeypatch.setattr(runtime, "_auto_devices", 8)
  assert dict(trainer._make_mesh(shape, 12).shape) == {"data": 6, "fsdp": 1, "model": 1}
  assert trainer._make_mesh({"data": -1, "fsdp": 2, "model": 1}, 6).size == 6
  assert trainer._make_mesh(shape, 64).size == 8


def test_accelerators_are_found_from_pci_vendors_and_device_nodes(tmp_path):
  assert not runtime.accelerators_present(str(tmp_path))
  pci = tmp_path / "sys/bus/pci/devices/0000:00:04.0"
  pci.mkdir(parents=True)
  (pci / "vendor").write_text("0x8086\n")  # An Intel device is not an accelerator.
  assert not runtime.accelerators_present(str(tmp_path))
  (pci / "vendor").write_text("0x1ae0\n")  # Google: a TPU chip.
  assert runtime.accelerators_present(str(tmp_path))
  gpu_host = tmp_path / "gpu"
  (gpu_host / "dev").mkdir(parents=True)
  (gpu_host / "dev/nvidiactl").write_text("")  # The control node alone is no GPU.
  assert not runtime.accelerators_present(str(gpu_host))
  (gpu_host / "dev/nvidia0").write_text("")
  assert runtime.accelerators_present(str(gpu_host))


def test_jax_stays_on_cpu_only_where_libtpu_meets_no_chips(tmp_path, monkeypatch):
  monkeypatch.delenv("JAX_PLATFORMS", raising=False)
  monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: object())
  assert runtime.keep_jax_on_cpu_without_chips(str(tmp_path))
  assert os.environ["JAX_PLATFORMS"] == "cpu"
  monkeypatch.setenv("JAX_PLATFORMS", "cuda")  # The user's choice is left alone.
  assert not runtime.keep_jax_on_cpu_without_chips(str(tmp_path))
  assert os.environ["JAX_PLATFORMS"] == "cuda"
  monkeypatch.delenv("JAX_PLATFORMS")
  (tmp_path / "dev").mkdir()
  (tmp_path / "dev/accel0").write_text("")  # A TPU VM: JAX starts its TPU backend.
  assert not runtime.keep_jax_on_cpu_without_chips(str(tmp_path))
  assert "JAX_PLATFORMS" not in os.environ
  monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: None)
  assert not runtime.keep_jax_on_cpu_without_chips(str(tmp_path / "none"))  # No libtpu.
  assert "JAX_PLATFORMS" not in os.environ
