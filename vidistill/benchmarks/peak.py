"""The matmul peak of this machine, measured in the run: large square `jnp.dot`, bf16 and float32.

A measured peak (not a datasheet one) is the baseline MFU is a ratio of, so "50% MFU" reads as
"half of what this machine does on one large dense matmul", whatever the CPU is.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vidistill.benchmarks import report
from vidistill.benchmarks import timing

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def matmul_flops_per_s(dtype: str = "float32", size: int = 2048, *, repeats: int = 5) -> float:
  """FLOP/s of one `[size, size] @ [size, size]` matmul in `dtype` (median of `repeats`)."""
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (size, size), DTYPES[dtype])
  b = jax.random.normal(key_b, (size, size), DTYPES[dtype])
  dot = jax.jit(jnp.dot)
  seconds = timing.median_seconds(lambda: dot(a, b), repeats=repeats)
  return 2.0 * size ** 3 / seconds


def peaks(full: bool = False) -> dict[str, float]:
  """{"float32": FLOP/s, "bfloat16": FLOP/s} on the default device."""
  size = 2048 if full else 512
  return {name: matmul_flops_per_s(name, size, repeats=5 if full else 3) for name in DTYPES}


def run(full: bool = False) -> report.Result:
  p = peaks(full)
  size = 2048 if full else 512
  fig = report.Figure(
      "peak", f"bf16 matmul {size}^2", p["bfloat16"], f"float32 matmul {size}^2", p["float32"],
      unit="FLOP/s", note="the baseline of the MFU rows (float32: CPU has no bf16 matmul units)")
  return report.Result("peak", [fig], {"flops_per_s": p, "size": size})
