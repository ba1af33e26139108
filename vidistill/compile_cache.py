"""JAX's persistent compilation cache, switched on for runs that compile the same program often.

A pipeline trains ten dual encoders of one shape and evaluates every model with the same suites:
with the cache, each program is compiled once and later steps (or a rerun after a crash) load the
executable from disk instead of spending seconds in XLA.

    compile_cache.enable("/tmp/vd/jax_cache")   # before or after the first jit; "" = off
"""
from __future__ import annotations

import os

# Programs that compile faster than this are not worth a file.
_MIN_COMPILE_SECONDS = 0.5


def enable(path: str) -> str:
  """Caches compiled programs under `path` (created); returns it. `path=""` leaves jax as it is."""
  if not path:
    return ""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(os.path.expanduser(path))
  os.makedirs(path, exist_ok=True)
  if jax.config.jax_compilation_cache_dir not in (None, "", path):
    compilation_cache.reset_cache()  # The cache binds its directory on first use.
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path
