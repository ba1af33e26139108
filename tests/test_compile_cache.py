"""The persistent compilation cache: a program compiled once is written to disk and a second
process loads it instead of compiling (run in subprocesses: the cache binds jax-wide state)."""
import os
import subprocess
import sys

_PROGRAM = """
import sys, time
import jax, jax.numpy as jnp
from vidistill import compile_cache
compile_cache._MIN_COMPILE_SECONDS = 0.0
compile_cache.enable(sys.argv[1])
def f(x):
  for i in range(60):
    x = jnp.tanh(x @ x.T + i)
  return x
t = time.perf_counter()
jax.jit(f).lower(jnp.ones((32, 32))).compile()
print(time.perf_counter() - t)
"""


def _compile_seconds(cache_dir):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", _PROGRAM, cache_dir], env=env, check=True,
                       capture_output=True, text=True).stdout
  return float(out.strip().splitlines()[-1])


def test_second_process_loads_the_program_from_the_cache(tmp_path):
  cache = str(tmp_path / "cache")
  first = _compile_seconds(cache)
  written = [n for n in os.listdir(cache) if n.startswith("jit_f")]
  assert len(written) == 1
  second = _compile_seconds(cache)
  assert second < first
  assert [n for n in os.listdir(cache) if n.startswith("jit_f")] == written


def test_empty_path_leaves_jax_alone():
  from vidistill import compile_cache
  import jax
  before = jax.config.jax_compilation_cache_dir
  assert compile_cache.enable("") == ""
  assert jax.config.jax_compilation_cache_dir == before
