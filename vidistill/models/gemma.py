"""Gemma and Gemma 2 decoder-only language models (big_vision layout), with a prefix-LM mask and a
decode step over an explicit KV cache.

Sizes are strings decoded in one place, `decode_variant("gemma2_2b")`; see `SIZES`. Gemma 2 adds
to Gemma 1: attention-logit and final-logit soft-capping, post-attention / post-MLP norms, a query
scale of `query_pre_attn_scalar ** -0.5` instead of `head_dim ** -0.5`, and local sliding-window
attention on every other layer (layers 0, 2, 4, ...; the others attend globally).

Masks are built from token positions (`positions [B, S]`, RoPE positions that skip padding),
a key-valid mask and a prefix mask (`prefix [B, S]`: the bidirectional block, PaliGemma's image and
prompt). A query sees a valid key that comes at or before it, or any valid key when both are in the
prefix. The local layers additionally drop keys `window` or more positions behind the query unless
both are in the prefix: Hugging Face's PaliGemma 2 mask (its block overlay is or-ed after the
window), which the tests check against. big_vision's Gemma has no sliding window at all; the two
agree whenever the prefix is shorter than the window (4096 in the released models).

Model API (through `Gemma(config).apply(variables, ..., method=...)`):
  embed(tokens [B, L]) -> [B, L, D]                 (scaled by sqrt(D) in the compute dtype)
  __call__(x [B, L, D], positions, valid, prefix) -> (logits [B, L, V], aux)
  prefill(x, positions, valid, prefix, cache_size) -> cache            (one pass over the prompt)
  decode_step(tokens [N], positions [N], cache, static, index, in_prefix) -> (logits [N, V], cache)
Logits are in the compute dtype; losses and decoding upcast to float32.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.config_args import ConfigError
from vidistill.models import gemma_layers as layers
from vidistill.models import layer_stack
from vidistill.models import lm_config
from vidistill.models.layers import constrain, token_embedding

Array = jax.Array

PAD_ID, EOS_ID, BOS_ID = 0, 1, 2  # Gemma's SentencePiece ids (pad and EOS as T5's)


@dataclasses.dataclass(frozen=True)
class GemmaConfig(lm_config.LMConfig):
  """Hyper-parameters of one Gemma (names as big_vision's `gemma.get_config`); vocab_size,
  num_heads, head_dim, mlp_dim, dtypes, remat_policy and scan_layers: lm_config.LMConfig (with
  scan_layers the KV cache is stacked on axis 1)."""
  width: int = 2048
  depth: int = 18
  num_kv_heads: int = 1
  norm_eps: float = 1e-6
  rope_base: float = 10_000.0
  # Queries are scaled by query_pre_attn_scalar ** -0.5; None = head_dim (Gemma 1, Gemma 2 2B/9B).
  query_pre_attn_scalar: float | None = None
  attn_logits_softcap: float | None = None  # Gemma 2: 50
  final_logits_softcap: float | None = None  # Gemma 2: 30
  post_norms: bool = False  # Gemma 2: norms after attention and MLP too
  sliding_window: int | None = None  # Gemma 2: 4096, on layers 0, 2, 4, ...

  positive = lm_config.LMConfig.positive + ("width", "depth", "num_kv_heads")

  def __post_init__(self):
    super().__post_init__()
    if self.num_heads % self.num_kv_heads:
      raise ConfigError(f"GemmaConfig.num_heads={self.num_heads} must be a multiple of "
                        f"num_kv_heads={self.num_kv_heads}")

  @property
  def query_scale_dim(self) -> float:
    return float(self.query_pre_attn_scalar or self.head_dim)

  def is_local(self, layer: int) -> bool:
    return bool(self.sliding_window) and layer % 2 == 0


_GEMMA2 = dict(attn_logits_softcap=50.0, final_logits_softcap=30.0, post_norms=True,
               sliding_window=4096)


def _size(width, depth, mlp, heads, kv_heads, head_dim, **kw):
  return {"vocab_size": 256_000, "width": width, "depth": depth, "mlp_dim": mlp,
          "num_heads": heads, "num_kv_heads": kv_heads, "head_dim": head_dim, **kw}


# width, depth, mlp_dim, num_heads, num_kv_heads, head_dim. Sources: the released config.json of
# google/gemma-2b, gemma-7b, gemma-2-2b, gemma-2-9b, gemma-2-27b (the same numbers as
# big_vision's models/ppp/gemma.py). PaliGemma's Gemma has 1024 location and 128 segmentation
# tokens more (vocab_size 257152); importing a checkpoint takes the vocabulary from its weights.
SIZES: dict[str, dict[str, Any]] = {
    "gemma_2b": _size(2048, 18, 16_384, 8, 1, 256),
    "gemma_7b": _size(3072, 28, 24_576, 16, 16, 256),
    "gemma2_2b": _size(2304, 26, 9_216, 8, 4, 256, query_pre_attn_scalar=256, **_GEMMA2),
    "gemma2_9b": _size(3584, 42, 14_336, 16, 8, 256, query_pre_attn_scalar=256, **_GEMMA2),
    # 27B scales queries by (width / num_heads) ** -0.5 = 144 ** -0.5, not its head_dim 128.
    "gemma2_27b": _size(4608, 46, 36_864, 32, 16, 128, query_pre_attn_scalar=144, **_GEMMA2),
    # Test / CPU smoke sizes.
    "gemma_tiny": _size(32, 2, 64, 4, 1, 8, vocab_size=128),
    "gemma2_tiny": _size(32, 4, 64, 4, 2, 8, vocab_size=128, query_pre_attn_scalar=16,
                         **{**_GEMMA2, "sliding_window": 8}),
    # The CPU miniature's (configs/train lm=paligemma): T5 "tiny"'s width and layer count.
    "gemma_mini": _size(32, 4, 64, 4, 1, 8, vocab_size=128),
}
PALIGEMMA_VOCAB_SIZE = 257_152


def decode_variant(variant: str, **overrides: Any) -> GemmaConfig:
  """`"gemma2_2b"` (any name in SIZES) -> GemmaConfig; `overrides` replace fields."""
  return lm_config.decode_variant(GemmaConfig, SIZES, variant, overrides, family="Gemma")


def prefix_lm_mask(q_pos: Array, k_pos: Array, k_valid: Array, q_prefix: Array, k_prefix: Array,
                   window: int | None = None) -> Array:
  """`[B, 1, Lq, S]` bool: which keys each query sees (see the module docstring).

  q_pos [B, Lq], k_pos [B, S] int positions; k_valid [B, S]; q_prefix [B, Lq], k_prefix [B, S]
  bool. `window`: a local layer's sliding window in positions, None for a global layer.
  """
  causal = k_pos[:, None, :] <= q_pos[:, :, None]
  if window:
    causal &= q_pos[:, :, None] - k_pos[:, None, :] < window
  block = q_prefix[:, :, None] & k_prefix[:, None, :]
  return ((causal | block) & k_valid[:, None, :])[:, None]


def positions_from_valid(valid: Array) -> Array:
  """RoPE positions `[B, L]` that count valid tokens only (padding repeats the previous one)."""
  return jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), axis=-1) - 1, 0)


class Gemma(nn.Module):
  """The Gemma decoder; parameters `embedder/input_embedding`, `layers_{i}/...`, `final_norm`."""
  config: GemmaConfig

  def setup(self):
    cfg = self.config
    self.embedder = token_embedding(cfg, cfg.width, name="embedder")
    if cfg.scan_layers:
      b = nn.broadcast  # per layer: the local/global flag (axis 0) and the cache (axis 1)
      self.layers = layer_stack.scanned(layers.Block, cfg.depth, cfg.remat_policy,
                                        in_axes=(b, b, b, 0, 1, b), out_axes=1)(cfg)
    else:
      block = layer_stack.remat(layers.Block, cfg.remat_policy)
      self.blocks = [block(cfg, name=f"layers_{i}") for i in range(cfg.depth)]
    self.final_norm = layers.RMSNorm(cfg.norm_eps, cfg.dtype, cfg.param_dtype)

  def embed(self, tokens: Array) -> Array:
    """`[B, L]` ids -> `[B, L, D]`, times sqrt(D) rounded to the compute dtype (as HF and
    big_vision: in bfloat16 the factor itself is rounded)."""
    x = self.embedder(tokens)
    return x * jnp.asarray(self.config.width ** 0.5, self.config.dtype).astype(x.dtype)

  def logits(self, x: Array) -> Array:
    """Final norm, tied output embedding, final soft-cap: `[..., D]` -> `[..., V]`."""
    logits = self.embedder.attend(self.final_norm(x))
    logits = layers.soft_cap(logits, self.config.final_logits_softcap)
    return constrain(logits, ("batch", "length", "vocab"))

  def _stack(self, x: Array, positions: Array, masks: tuple[Array, Array], cache: Any = None,
             index: Array | None = None) -> tuple[Array, Any]:
    cfg = self.config
    if cfg.scan_layers:
      flags = jnp.array([cfg.is_local(i) for i in range(cfg.depth)])
      return self.layers(x, positions, masks[0], masks[1], flags, cache, index)
    new_cache = []
    for i, block in enumerate(self.blocks):
      x, layer_cache = block(x, positions, masks[0], masks[1], cfg.is_local(i),
                             None if cache is None else cache[i], index)
      new_cache.append(layer_cache)
    return x, (new_cache if cache is not None else None)

  def _masks(self, q_pos, k_pos, k_valid, q_prefix, k_prefix) -> tuple[Array, Array]:
    full = prefix_lm_mask(q_pos, k_pos, k_valid, q_prefix, k_prefix)
    if not self.config.sliding_window:
      return full, full
    return full, prefix_lm_mask(q_pos, k_pos, k_valid, q_prefix, k_prefix,
                                self.config.sliding_window)

  def __call__(self, x: Array, positions: Array, valid: Array, prefix: Array
               ) -> tuple[Array, dict[str, Array]]:
    """Embedded inputs `x [B, L, D]`, positions [B, L], valid / prefix [B, L] bool ->
    `(logits [B, L, V], {"pre_logits": [B, L, D]})`."""
    x = constrain(x.astype(self.config.dtype), ("batch", "length", "embed"))
    masks = self._masks(positions, positions, valid, prefix, prefix)
    x, _ = self._stack(x, positions, masks)
    return self.logits(x), {"pre_logits": x}

  def init_cache(self, batch_size: int, cache_size: int) -> Any:
    """Per layer `{"key", "value": [B, S, K, H]}` zeros; scanned: one dict `[B, layers, S, K, H]`
    (batch first on every leaf, as decoding.py's beam reordering needs)."""
    cfg = self.config
    shape = (batch_size, cache_size, cfg.num_kv_heads, cfg.head_dim)
    if cfg.scan_layers:
      stacked = shape[:1] + (cfg.depth,) + shape[1:]
      return {"key": jnp.zeros(stacked, cfg.dtype), "value": jnp.zeros(stacked, cfg.dtype)}
    return [{"key": jnp.zeros(shape, cfg.dtype), "value": jnp.zeros(shape, cfg.dtype)}
            for _ in range(cfg.depth)]

  def prefill(self, x: Array, positions: Array, valid: Array, prefix: Array, cache_size: int
              ) -> Any:
    """Runs the prompt `x [B, P, D]` in one pass; returns the per-layer cache `[B, cache_size, K,
    H]` holding its keys and values at indices [0, P)."""
    b, p = x.shape[:2]
    x = x.astype(self.config.dtype)
    masks = self._masks(positions, positions, valid, prefix, prefix)
    pad = ((0, 0), (0, 0), (0, 0), (0, cache_size - p))
    masks = tuple(jnp.pad(m, pad) for m in masks)
    _, cache = self._stack(x, positions, masks, self.init_cache(b, cache_size), jnp.int32(0))
    return cache

  def decode_step(self, tokens: Array, positions: Array, cache: Any,
                  static: dict[str, Array], index: Array, in_prefix: Array | bool = False
                  ) -> tuple[Array, Any]:
    """One token per row: `tokens [N]` at RoPE `positions [N]`, written at cache `index`.

    `static`: "positions" [N, S] (every cache slot's position), "valid" [N, S], "prefix" [N, S].
    `in_prefix`: the token belongs to the prefix block (only its last token can be run this way:
    it must see the same keys as in the prefill). Returns `(logits [N, V], cache)`.
    """
    x = self.embed(tokens[:, None])
    q_pos = positions[:, None]
    q_prefix = jnp.broadcast_to(jnp.asarray(in_prefix, bool), q_pos.shape)
    masks = self._masks(q_pos, static["positions"], static["valid"], q_prefix, static["prefix"])
    x, cache = self._stack(x, q_pos, masks, cache, index)
    return self.logits(x)[:, 0], cache
