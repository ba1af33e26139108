"""Layers shared by every model: logically partitioned initialisers, a multi-axis projection and
the KV cache write of the decoders.

Every parameter carries logical axis names (`embed`, `mlp`, `heads`, `kv`, ...) and key
activations are constrained by name; vidistill/parallel/partitioning.py maps the names to mesh
axes, so data / FSDP / tensor parallelism is a rule change, not a model change.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any


def partitioned(init: Callable[..., Any], names: Sequence[str | None]) -> Callable[..., Any]:
  """`init` whose parameter is boxed with the logical axis `names` (one per dimension)."""
  return nn.with_logical_partitioning(init, tuple(names))


def constrain(x: Array, names: Sequence[str | None]) -> Array:
  """Sharding constraint on activation `x` by logical axis names (a no-op outside a mesh)."""
  return nn.with_logical_constraint(x, tuple(names))


class Projection(nn.Module):
  """A linear map contracting the last `n_in` input axes: `[..., *in] -> [..., *features]`.

  The kernel is `in + features` (e.g. `[embed, heads, kv]` for a query, `[heads, kv, embed]` for
  an attention output), the optional bias `features`. Used instead of `nn.DenseGeneral`, which
  builds its kernel flat and reshapes it inside the initialiser: the flat value cannot carry one
  logical name per axis (flax re-runs the initialiser abstractly on every apply, which fails under
  axis rules).
  """
  features: tuple[int, ...]
  names: tuple[str | None, ...]  # one per kernel axis: input axes, then `features`
  n_in: int
  kernel_init: Callable[..., Any]
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    shape = tuple(x.shape[x.ndim - self.n_in:]) + tuple(self.features)
    kernel = self.param("kernel", partitioned(self.kernel_init, self.names), shape,
                        self.param_dtype)
    contract = (tuple(range(x.ndim - self.n_in, x.ndim)), tuple(range(self.n_in)))
    y = jax.lax.dot_general(jnp.asarray(x, self.dtype), jnp.asarray(kernel, self.dtype),
                            (contract, ((), ())))
    if self.use_bias:
      bias = self.param("bias", partitioned(nn.initializers.zeros, self.names[self.n_in:]),
                        tuple(self.features), self.param_dtype)
      y = y + jnp.asarray(bias, self.dtype)
    return y


def write_kv_cache(cache: dict[str, Array], keys: Array, values: Array, index: Array
                   ) -> tuple[Array, Array, dict[str, Array]]:
  """New `keys`, `values` `[B, T, K, H]` written into the cache's `[B, S, K, H]` slots from
  position `index`: -> (all keys, all values, the new cache), in the cache's dtype."""
  at = (0, index, 0, 0)
  keys = jax.lax.dynamic_update_slice(cache["key"], keys.astype(cache["key"].dtype), at)
  values = jax.lax.dynamic_update_slice(cache["value"], values.astype(cache["value"].dtype), at)
  return keys, values, {"key": keys, "value": values}


def token_embedding(config: Any, width: int, **kw: Any) -> nn.Embed:
  """The `[vocab, embed]` token table of a language model config (t5.T5Config,
  gemma.GemmaConfig), initialised N(0, 1) as t5x and big_vision do."""
  return nn.Embed(
      config.vocab_size, width, dtype=config.dtype, param_dtype=config.param_dtype,
      embedding_init=partitioned(nn.initializers.normal(stddev=1.0), ("vocab", "embed")), **kw)
