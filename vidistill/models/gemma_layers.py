"""Gemma / Gemma 2 building blocks: RMS norm with (1 + scale), RoPE, grouped-query attention over
an optional KV cache, the GeGLU feed-forward and one decoder layer.

Parameter names and layouts are big_vision's (models/ppp/gemma.py), so a PaliGemma `.npz` maps by
name (convert/paligemma.py): `attn/q_einsum/w [N, D, H]`, `attn/kv_einsum/w [2, K, D, H]`,
`attn/attn_vec_einsum/w [N, H, D]`, `mlp/gating_einsum [2, D, F]`, `mlp/linear [F, D]`,
`pre_attention_norm/scale`, `pre_ffw_norm/scale` and, for Gemma 2, `post_attention_norm/scale`,
`post_ffw_norm/scale`. (N query heads, K key/value heads, H head width, D model width, F MLP width.)
A checkpoint with N == K stores one `qkv_einsum`; the converter splits it.

Numerics follow Hugging Face's Gemma / Gemma 2 (checked against it in tests): norm statistics and
the `1 + scale` in float32, RoPE angles in float32 with the rotate-half layout, softmax in float32,
soft-capping `cap * tanh(logits / cap)` before masking.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.models.layers import constrain, partitioned, write_kv_cache

Array = jax.Array
Dtype = Any

# Finite: a fully masked row (a padding query) gives a uniform softmax rather than NaN.
_MASK_VALUE = -2.3819763e38


def _fan_in(in_axis: int | Sequence[int], out_axis: int | Sequence[int]) -> Callable[..., Any]:
  return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis,
                                          out_axis=out_axis)


class Weight(nn.Module):
  """One parameter `w` in its own scope, as big_vision's `Einsum` (so names map as `<name>/w`)."""
  shape: tuple[int, ...]
  names: tuple[str | None, ...]
  init: Callable[..., Any]
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self) -> Array:
    return self.param("w", partitioned(self.init, self.names), self.shape, self.param_dtype)


class RMSNorm(nn.Module):
  """`x / sqrt(mean(x^2) + eps) * (1 + scale)`, scale initialised to zero; `[..., D]` in and out."""
  epsilon: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", partitioned(nn.initializers.zeros, ("norm",)), (x.shape[-1],),
                       self.param_dtype)
    x32 = jnp.asarray(x, jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.epsilon)
    return (y * (1.0 + jnp.asarray(scale, jnp.float32))).astype(self.dtype)


def apply_rope(x: Array, positions: Array, base: float = 10_000.0) -> Array:
  """Rotary embedding of `x [B, L, heads, H]` at integer `positions [B, L]`.

  Rotate-half layout (the first and second halves of each head form the pairs), which is what
  both big_vision and Hugging Face's Gemma use; angles in float32.
  """
  half = x.shape[-1] // 2
  inv_freq = 1.0 / (base ** (jnp.arange(0, 2 * half, 2, dtype=jnp.float32) / (2 * half)))
  angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, L, H/2]
  sin = jnp.sin(angles)[:, :, None, :].astype(x.dtype)
  cos = jnp.cos(angles)[:, :, None, :].astype(x.dtype)
  x1, x2 = x[..., :half], x[..., half:]
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def soft_cap(x: Array, cap: float | None) -> Array:
  """Gemma 2's `cap * tanh(x / cap)`; identity for cap None or 0."""
  return x if not cap else cap * jnp.tanh(x / cap)


class Attention(nn.Module):
  """Grouped-query attention (N query heads share K key/value heads; K = 1 is multi-query).

  `__call__(x [B, L, D], positions [B, L], mask [B, 1, L, S] bool, cache=None, index=None)`:
  without a cache S = L and keys/values come from `x`; with `cache = {"key", "value": [B, S, K, H]}`
  this call's keys/values are written at `index` along S and the query attends over the whole
  cache (the prefill writes the prompt at 0, a decode step one token at its position). Returns
  `(y [B, L, D], cache or None)`. Cached keys are stored after RoPE.
  """
  num_heads: int
  num_kv_heads: int
  head_dim: int
  query_pre_attn_scalar: float
  attn_logits_softcap: float | None = None
  rope_base: float = 10_000.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, positions: Array, mask: Array, cache: dict[str, Array] | None = None,
               index: Array | None = None) -> tuple[Array, dict[str, Array] | None]:
    n, k, h, d = self.num_heads, self.num_kv_heads, self.head_dim, x.shape[-1]
    if n % k:
      raise ValueError(f"num_heads={n} is not a multiple of num_kv_heads={k}")
    w = lambda name, shape, names, init: jnp.asarray(  # noqa: E731
        Weight(shape, names, init, self.param_dtype, name=name)(), self.dtype)
    q_w = w("q_einsum", (n, d, h), ("heads", "embed", "kv"), _fan_in(1, (0, 2)))
    kv_w = w("kv_einsum", (2, k, d, h), (None, "heads", "embed", "kv"), _fan_in(2, (0, 1, 3)))
    out_w = w("attn_vec_einsum", (n, h, d), ("heads", "kv", "embed"), _fan_in((0, 1), 2))
    x = jnp.asarray(x, self.dtype)
    names = ("batch", "length", "heads", "kv")
    q = constrain(jnp.einsum("BTD,NDH->BTNH", x, q_w), names)
    keys = constrain(jnp.einsum("BSD,KDH->BSKH", x, kv_w[0]), names)
    values = constrain(jnp.einsum("BSD,KDH->BSKH", x, kv_w[1]), names)
    q = apply_rope(q, positions, self.rope_base) * jnp.asarray(
        self.query_pre_attn_scalar ** -0.5, self.dtype)
    keys = apply_rope(keys, positions, self.rope_base)
    if cache is not None:
      keys, values, cache = write_kv_cache(cache, keys, values, index)
    b, t = q.shape[:2]
    q = q.reshape(b, t, k, n // k, h)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, keys.astype(self.dtype))
    logits = soft_cap(logits.astype(jnp.float32), self.attn_logits_softcap)
    logits = jnp.where(mask[:, :, None], logits, _MASK_VALUE)  # mask [B, 1, T, S] -> per group
    probs = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    y = jnp.einsum("BKGTS,BSKH->BTKGH", probs, values.astype(self.dtype)).reshape(b, t, n, h)
    y = jnp.einsum("BTNH,NHD->BTD", y, out_w)
    return constrain(y, ("batch", "length", "embed")), cache


class FeedForward(nn.Module):
  """GeGLU: `gelu_tanh(x W_gate) * (x W_up)` then `W_down`; `gating_einsum` stacks gate and up."""
  mlp_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d = x.shape[-1]
    gating = self.param("gating_einsum", partitioned(_fan_in(1, (0, 2)), (None, "embed", "mlp")),
                        (2, d, self.mlp_dim), self.param_dtype)
    linear = self.param("linear", partitioned(_fan_in(0, 1), ("mlp", "embed")),
                        (self.mlp_dim, d), self.param_dtype)
    x = jnp.asarray(x, self.dtype)
    gating = jnp.asarray(gating, self.dtype)
    hidden = nn.gelu(x @ gating[0], approximate=True) * (x @ gating[1])
    hidden = constrain(hidden, ("batch", "length", "mlp"))
    return constrain(hidden @ jnp.asarray(linear, self.dtype), ("batch", "length", "embed"))


class Block(nn.Module):
  """One decoder layer: pre-norm attention and GeGLU, each with a post-norm in Gemma 2.

  `__call__(x [B, L, D], positions, mask, local_mask, is_local, cache=None, index=None)
  -> (x, cache)`, see Attention: the layer attends with `local_mask` where `is_local` (a bool, or
  a traced one when the layers are scanned: the flag is the per-layer input), else `mask`.
  `config` is a gemma.GemmaConfig.
  """
  config: Any

  @nn.compact
  def __call__(self, x: Array, positions: Array, mask: Array, local_mask: Array,
               is_local: Array | bool, cache: dict[str, Array] | None = None,
               index: Array | None = None) -> tuple[Array, dict[str, Array] | None]:
    cfg = self.config
    norm = functools.partial(RMSNorm, cfg.norm_eps, cfg.dtype, cfg.param_dtype)
    x = constrain(x, ("batch", "length", "embed"))
    mask = jnp.where(is_local, local_mask, mask)
    y, cache = Attention(cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.query_scale_dim,
                         cfg.attn_logits_softcap, cfg.rope_base, cfg.dtype, cfg.param_dtype,
                         name="attn")(norm(name="pre_attention_norm")(x), positions, mask, cache,
                                      index)
    if cfg.post_norms:
      y = norm(name="post_attention_norm")(y)
    x = x + y
    y = FeedForward(cfg.mlp_dim, cfg.dtype, cfg.param_dtype, name="mlp")(
        norm(name="pre_ffw_norm")(x))
    if cfg.post_norms:
      y = norm(name="post_ffw_norm")(y)
    return constrain(x + y, ("batch", "length", "embed")), cache
