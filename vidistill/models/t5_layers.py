"""T5 / UL2 building blocks: RMS norm, relative position biases, attention with a KV cache, MLP.

Parameter names and layouts follow t5x (`query`, `key`, `value`, `out`, `wi_0`, `wi_1`, `wo`,
`rel_embedding`, `scale`), so a T5X checkpoint maps one to one (convert/t5.py) and the Hugging Face
names map by a fixed table. Differences from t5x's own layout: attention kernels keep their head
axis (`[embed, heads, kv]`, `[heads, kv, embed]`) so that they carry the logical names
("embed", "heads", "kv") instead of a joined axis.

Numerics (T5 paper / Mesh TensorFlow conventions, checked against Hugging Face in tests):
- no 1/sqrt(head_dim) in attention: T5 folds it into the query initialisation;
- RMS norm without mean subtraction or bias, computed in float32;
- softmax in float32 whatever the compute dtype.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidistill.models.layers import Projection, constrain, partitioned, write_kv_cache

Array = jax.Array
Dtype = Any

# Masked attention logits: large but finite so that a fully masked row (a padding query) gives a
# uniform softmax instead of NaN; its output is never used.
_MASK_VALUE = -1e10

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    # T5 v1.1 "gated-gelu": Hugging Face's `gelu_new` and t5x's `nn.gelu` are the tanh form.
    "gelu": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_exact": functools.partial(jax.nn.gelu, approximate=False),
    "relu": jax.nn.relu,  # T5 v1.0
    "silu": jax.nn.silu,  # UL2 "gated-silu" (t5x calls it "swish")
    "swish": jax.nn.silu,
    "linear": lambda x: x,
}


class RMSNorm(nn.Module):
  """T5 LayerNorm: `x / sqrt(mean(x^2) + eps) * scale`, statistics in float32.

  `[..., D]` in, same shape in `dtype` out.
  """
  epsilon: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x32 = jnp.asarray(x, jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + self.epsilon)
    scale = self.param("scale", partitioned(nn.initializers.ones, ("norm",)), (x.shape[-1],),
                       self.param_dtype)
    return (y * jnp.asarray(scale, jnp.float32)).astype(self.dtype)


@functools.lru_cache(maxsize=None)
def bucket_table(bidirectional: bool, num_buckets: int, max_distance: int) -> np.ndarray:
  """Bucket of every distance `n = query_pos - key_pos` in `[-max_distance, max_distance]`.

  Returns `[2 * max_distance + 1] int32`, indexed by `n + max_distance`; distances beyond
  `max_distance` share the end buckets. The T5 formula (log-spaced buckets past `max_exact`) is
  evaluated here in float64 once: a float32 `log` on the accelerator can land on the other side
  of a bucket edge (e.g. n = 16, 32, 64 fall exactly on one), and T5's buckets are defined by the
  exact value. Matches Hugging Face `T5Attention._relative_position_bucket` (checked in tests).
  """
  out = np.zeros(2 * max_distance + 1, np.int32)
  for i, n in enumerate(range(-max_distance, max_distance + 1)):
    buckets, offset = num_buckets, 0
    if bidirectional:
      buckets //= 2
      offset = buckets if n < 0 else 0  # keys after the query get the upper half
      n = abs(n)
    else:
      n = max(n, 0)  # keys after the query (masked anyway) share bucket 0
    max_exact = buckets // 2
    if n < max_exact:
      out[i] = offset + n
    else:
      large = max_exact + int(math.floor(
          math.log(n / max_exact) / math.log(max_distance / max_exact) * (buckets - max_exact)))
      out[i] = offset + min(large, buckets - 1)
  return out


class RelativePositionBiases(nn.Module):
  """T5 relative position bias, one table per stack shared by all its layers.

  Call with query positions `[Lq]` and key positions `[Lk]` (int32, may be traced: the decode step
  passes its current index) and get the additive attention bias `[1, H, Lq, Lk]`.
  """
  num_buckets: int
  max_distance: int
  num_heads: int
  bidirectional: bool
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, q_pos: Array, k_pos: Array) -> Array:
    table = jnp.asarray(bucket_table(self.bidirectional, self.num_buckets, self.max_distance))
    n = jnp.clip(q_pos[:, None] - k_pos[None, :], -self.max_distance, self.max_distance)
    buckets = table[n + self.max_distance]  # [Lq, Lk]
    rel_embedding = self.param(
        "rel_embedding",
        partitioned(nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
                    ("heads", "relpos_buckets")),
        (self.num_heads, self.num_buckets), self.param_dtype)
    bias = jnp.take(jnp.asarray(rel_embedding, self.dtype), buckets, axis=1)  # [H, Lq, Lk]
    return bias[None]


def attention_mask(query_valid: Array, key_valid: Array) -> Array:
  """`[B, Lq]`, `[B, Lk]` bool -> `[B, 1, Lq, Lk]` bool (both positions valid)."""
  return (query_valid[:, :, None] & key_valid[:, None, :])[:, None]


def causal_mask(length: int) -> Array:
  """`[1, 1, L, L]` bool: query i sees keys j <= i."""
  return jnp.tril(jnp.ones((length, length), bool))[None, None]


class MultiHeadAttention(nn.Module):
  """T5 attention (no logit scaling, no biases) with optional external keys/values.

  Shapes: queries from `x [B, Lq, D]`; keys/values either projected from `kv_inputs [B, Lk, D]`
  or given as `keys, values [B, Lk, H, K]` (the cached cross-attention keys or the self-attention
  cache). `mask [B|1, 1, Lq, Lk]` bool, `bias [1, H, Lq, Lk]` added to the logits.
  """
  num_heads: int
  head_dim: int
  emb_dim: int
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    # t5x init: fan-in normal, with the 1/sqrt(head_dim) that T5 leaves out of the logits folded
    # into the query kernel.
    qkv_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=0,
                                                out_axis=(1, 2))
    depth_scaling = math.sqrt(self.head_dim)
    query_init = lambda *a: qkv_init(*a) / depth_scaling  # noqa: E731
    proj = functools.partial(Projection, (self.num_heads, self.head_dim), ("embed", "heads", "kv"),
                             1, dtype=self.dtype, param_dtype=self.param_dtype)
    self.query = proj(kernel_init=query_init)
    self.key = proj(kernel_init=qkv_init)
    self.value = proj(kernel_init=qkv_init)
    self.out = Projection(
        (self.emb_dim,), ("heads", "kv", "embed"), 2, dtype=self.dtype,
        param_dtype=self.param_dtype,
        kernel_init=nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 1),
                                                     out_axis=2))
    self.dropout = nn.Dropout(self.dropout_rate)

  def project_kv(self, kv_inputs: Array) -> tuple[Array, Array]:
    """`[B, Lk, D]` -> keys, values `[B, Lk, H, K]`."""
    names = ("batch", "length", "heads", "kv")
    return (constrain(self.key(kv_inputs), names), constrain(self.value(kv_inputs), names))

  def __call__(self, x: Array, keys: Array, values: Array, mask: Array | None,
               bias: Array | None, deterministic: bool) -> Array:
    query = constrain(self.query(x), ("batch", "length", "heads", "kv"))
    logits = jnp.einsum("bqhd,bkhd->bhqk", query, keys)
    if bias is not None:
      logits = logits + bias
    logits = jnp.asarray(logits, jnp.float32)
    if mask is not None:
      logits = jnp.where(mask, logits, _MASK_VALUE)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = self.dropout(weights, deterministic=deterministic)
    y = jnp.einsum("bhqk,bkhd->bqhd", weights, values)
    return constrain(self.out(y), ("batch", "length", "embed"))


class MlpBlock(nn.Module):
  """T5 feed-forward: `wo(prod_i act_i(wi_i x))`; one activation -> `wi` (v1.0 ReLU), several ->
  `wi_0, wi_1, ...` (v1.1 gated GELU, UL2 gated SiLU). `[B, L, D]` -> `[B, L, D]`."""
  mlp_dim: int
  activations: Sequence[str]
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    hidden = None
    for i, act in enumerate(self.activations):
      name = "wi" if len(self.activations) == 1 else f"wi_{i}"
      h = nn.Dense(self.mlp_dim, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                   kernel_init=partitioned(init, ("embed", "mlp")), name=name)(x)
      h = ACTIVATIONS[act](h)
      hidden = h if hidden is None else hidden * h
    hidden = constrain(hidden, ("batch", "length", "mlp"))
    hidden = nn.Dropout(self.dropout_rate)(hidden, deterministic=deterministic)
    y = nn.Dense(x.shape[-1], use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(init, ("mlp", "embed")), name="wo")(hidden)
    return constrain(y, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
  """Pre-norm self-attention + MLP block; `[B, L, D]` -> `[B, L, D]`."""
  config: Any  # t5.T5Config

  @nn.compact
  def __call__(self, x: Array, mask: Array, bias: Array, deterministic: bool) -> Array:
    cfg = self.config
    norm = functools.partial(RMSNorm, cfg.layer_norm_epsilon, cfg.dtype, cfg.param_dtype)
    drop = nn.Dropout(cfg.dropout_rate)
    attention = MultiHeadAttention(cfg.num_heads, cfg.head_dim, cfg.emb_dim, cfg.dropout_rate,
                                   cfg.dtype, cfg.param_dtype, name="attention")
    y = norm(name="pre_attention_layer_norm")(x)
    keys, values = attention.project_kv(y)
    x = x + drop(attention(y, keys, values, mask, bias, deterministic), deterministic=deterministic)
    y = norm(name="pre_mlp_layer_norm")(x)
    y = MlpBlock(cfg.mlp_dim, tuple(cfg.mlp_activations), cfg.dropout_rate, cfg.dtype,
                 cfg.param_dtype, name="mlp")(y, deterministic)
    return constrain(x + drop(y, deterministic=deterministic), ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention and MLP.

  Two modes sharing one set of weights:
  - teacher forcing: `y [B, L, D]`, `cache=None`;
  - one decode step: `y [N, 1, D]` and `cache = {"key", "value": [N, max_len, H, K]}`; this
    position's key/value is written at `step` and the updated cache returned.
  Cross-attention keys/values come precomputed (`cross_kv`), so a decode step never projects the
  encoder output again.
  """
  config: Any  # t5.T5Config

  def setup(self):
    cfg = self.config
    norm = functools.partial(RMSNorm, cfg.layer_norm_epsilon, cfg.dtype, cfg.param_dtype)
    attention = functools.partial(MultiHeadAttention, cfg.num_heads, cfg.head_dim, cfg.emb_dim,
                                  cfg.dropout_rate, cfg.dtype, cfg.param_dtype)
    self.pre_self_attention_layer_norm = norm()
    self.self_attention = attention()
    self.pre_cross_attention_layer_norm = norm()
    self.encoder_decoder_attention = attention()
    self.pre_mlp_layer_norm = norm()
    self.mlp = MlpBlock(cfg.mlp_dim, tuple(cfg.mlp_activations), cfg.dropout_rate, cfg.dtype,
                        cfg.param_dtype)
    self.drop = nn.Dropout(cfg.dropout_rate)

  def cross_kv(self, encoded: Array) -> tuple[Array, Array]:
    """Encoder output `[B, S, D]` -> cross-attention keys, values `[B, S, H, K]`."""
    return self.encoder_decoder_attention.project_kv(encoded)

  def cross_kv_scan(self, carry: Any, encoded: Array) -> tuple[Any, tuple[Array, Array]]:
    """`cross_kv` in the `(carry, output)` form that nn.scan over the layers needs."""
    return carry, self.cross_kv(encoded)

  def __call__(self, y: Array, cross_keys: Array, cross_values: Array, cross_mask: Array,
               self_mask: Array, self_bias: Array, deterministic: bool,
               cache: dict[str, Array] | None = None, step: Array | None = None
               ) -> tuple[Array, dict[str, Array] | None]:
    x = self.pre_self_attention_layer_norm(y)
    keys, values = self.self_attention.project_kv(x)
    if cache is not None:
      keys, values, cache = write_kv_cache(cache, keys, values, step)
    x = self.self_attention(x, keys, values, self_mask, self_bias, deterministic)
    y = y + self.drop(x, deterministic=deterministic)
    x = self.pre_cross_attention_layer_norm(y)
    x = self.encoder_decoder_attention(x, cross_keys, cross_values, cross_mask, None, deterministic)
    y = y + self.drop(x, deterministic=deterministic)
    x = self.mlp(self.pre_mlp_layer_norm(y), deterministic)
    y = y + self.drop(x, deterministic=deterministic)
    return constrain(y, ("batch", "length", "embed")), cache
