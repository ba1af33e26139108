"""Trainer tests: `toy` (tests/train/toy.py) importable, and a persistent XLA compilation cache.

Several tests train the same toy program (a run and its resumption, the in-process references of
the kill and multi-process tests, whose subprocesses get the cache through `toy.subprocess_env`);
the on-disk cache lets them compile it once per session. It is switched on per module and back
off afterwards, so tests elsewhere run as configured.
"""
import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

_CACHE_DIR = tempfile.mkdtemp(prefix="vidistill_xla_cache_")
_SETTINGS = {"jax_compilation_cache_dir": _CACHE_DIR,
             "jax_persistent_cache_min_compile_time_secs": 0,
             "jax_persistent_cache_min_entry_size_bytes": 0}


@pytest.fixture(autouse=True, scope="module")
def _compilation_cache():
  import jax
  from jax.experimental.compilation_cache import compilation_cache
  before = {name: getattr(jax.config, name) for name in _SETTINGS}
  for name, value in _SETTINGS.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()  # JAX decides once whether the cache is on; decide again.
  yield
  for name, value in before.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
