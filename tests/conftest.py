"""Test-wide settings: quiet TensorFlow, CPU-only JAX with 8 fake devices, vidistill's malloc
settings, the markers, the longest module first.

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
  config.addinivalue_line("markers", "slow: takes more than ~30 s; run with `-m slow -n 0`")
  config.addinivalue_line("markers", "long: also slow: a whole multi-process workflow or the docs' "
                          "slow blocks (minutes each); only these: `pytest -m long -n 0`")


# Started first, so that with two test processes (pytest.ini) it overlaps everything else instead
# of running alone at the end: the quick pipeline end to end, minutes.
_FIRST = ("tests/pipeline/test_pipeline_quick.py",)


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: not item.nodeid.startswith(_FIRST))
