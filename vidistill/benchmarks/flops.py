"""Model FLOPs counted from the program itself: the matmuls and convolutions of its jaxpr.

Independent of XLA's cost analysis (which also counts elementwise work and may fuse or rewrite),
so the two cross-check each other. Works on abstract inputs (`jax.ShapeDtypeStruct`), so the
paper-size model is counted without allocating it.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
from jax.extend import core as jax_core

from vidistill.train import metrics


def _dot_flops(eqn) -> float:
  lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
  (lhs_contract, rhs_contract), (lhs_batch, _) = eqn.params["dimension_numbers"]
  contract = math.prod(lhs[d] for d in lhs_contract)
  batch = math.prod(lhs[d] for d in lhs_batch)
  lhs_free = math.prod(s for d, s in enumerate(lhs) if d not in lhs_contract and d not in lhs_batch)
  rhs_free = math.prod(s for d, s in enumerate(rhs) if d not in rhs_contract and
                       d not in eqn.params["dimension_numbers"][1][1])
  return 2.0 * batch * lhs_free * rhs_free * contract


def _conv_flops(eqn) -> float:
  rhs = eqn.invars[1].aval.shape
  out = eqn.outvars[0].aval.shape
  spec = eqn.params["dimension_numbers"]
  kernel_in = rhs[spec.rhs_spec[1]]
  kernel_spatial = math.prod(rhs[d] for d in spec.rhs_spec[2:])
  return 2.0 * math.prod(out) * kernel_in * kernel_spatial


def jaxpr_flops(jaxpr: Any) -> float:
  """Matmul + convolution FLOPs of a (closed) jaxpr; `scan` bodies count `length` times.

  A `while_loop` body is counted once (its trip count is not static); count a decode loop per
  step instead.
  """
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      total += _dot_flops(eqn)
    elif name == "conv_general_dilated":
      total += _conv_flops(eqn)
    times = eqn.params.get("length", 1) if name == "scan" else 1
    for param in eqn.params.values():
      for sub in (param if isinstance(param, (tuple, list)) else (param,)):
        if isinstance(sub, (jax_core.ClosedJaxpr, jax_core.Jaxpr)):
          total += times * jaxpr_flops(sub)
  return total


def count(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
  """Matmul/conv FLOPs of one call `fn(*args, **kwargs)` (arrays or ShapeDtypeStructs)."""
  return jaxpr_flops(jax.make_jaxpr(fn, **kwargs)(*args))


def xla_flops(fn: Callable[..., Any], *args: Any) -> float | None:
  """FLOPs XLA's cost analysis gives the compiled `jax.jit(fn)(*args)` (None if unavailable)."""
  return metrics.compiled_flops(jax.jit(fn).lower(*args).compile())


def compiled_flops(compiled: Any) -> float | None:
  return metrics.compiled_flops(compiled)
