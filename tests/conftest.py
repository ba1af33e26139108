"""Test-wide settings: quiet TensorFlow, CPU-only JAX with 8 fake devices, vidistill's malloc
settings, the `slow` marker.

The device count must be fixed before jax is first imported, so it is set here for every test:
sharding tests build meshes over the 8 CPU devices; other tests simply use device 0.
"""
import os

from vidistill import runtime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()
# glibc's malloc as every vidistill process sets it (runtime.py): the tests run the code as users do,
# and their train steps stop paying page faults for XLA's scratch buffers.
runtime.configure()


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than ~30 s; run with `-m slow`")
  config.addinivalue_line("markers", "long: a whole multi-process workflow or the docs' slow "
                          "blocks (minutes); CI runs them in its slow phase: `pytest -m long`")
