"""T5 / T5 v1.1 / UL2 encoder-decoder (t5x layout), with a decode step over an explicit KV cache.

Sizes are strings decoded in one place, `decode_variant("base")`; see `SIZES` and
docs/models_language.md. Naming (the one trap): Hugging Face's "t5-base" is T5 *v1.0* (ReLU MLP,
tied embeddings, larger MLP), while "t5-v1_1-base", Flan-T5 and UL2 are v1.1-style (gated MLP,
untied). Here "t5_base" is v1.0 and "t5_1_1_base" is v1.1; bare "base" means v1.1, the T5 that
PaLI and UL2 build on.

Model API (all through `T5(config).apply(variables, ..., method=...)`):
  __call__(encoder_input_tokens [B, S], decoder_input_tokens [B, L]) -> (logits [B, L, V], aux)
  encode(tokens [B, S], prefix=[B, P, D]) -> (encoded [B, P+S, D], mask [B, P+S] bool)
  decode(encoded, encoder_mask, decoder_input_tokens [B, L]) -> logits [B, L, V]
  init_cache(encoded, encoder_mask, max_len) -> (cache, static)     (cross K/V computed here, once)
  decode_step(tokens [N], cache, static, step) -> (logits [N, V], cache)
Logits are in the compute dtype; losses and decoding upcast to float32.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.config_args import ConfigError
from vidistill.models import layer_stack
from vidistill.models import lm_config
from vidistill.models import t5_layers as layers
from vidistill.models.layers import constrain, partitioned, token_embedding

Array = jax.Array

PAD_ID = 0
EOS_ID = 1
START_ID = 0  # T5 starts decoding from the pad id

@dataclasses.dataclass(frozen=True)
class T5Config(lm_config.LMConfig):
  """Hyper-parameters of one T5 (field names as t5x's `network.T5Config`); vocab_size, num_heads,
  head_dim, mlp_dim, dtypes, remat_policy and scan_layers: lm_config.LMConfig."""
  emb_dim: int = 512
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  # ("relu",): T5 v1.0; ("gelu", "linear"): v1.1 / Flan-T5 gated GELU; ("silu", "linear"): UL2.
  mlp_activations: tuple[str, ...] = ("gelu", "linear")
  # Tied input/output embedding (v1.0) instead of a separate `logits_dense` (v1.1, UL2).
  logits_via_embedding: bool = False
  # Multiply the decoder output by emb_dim**-0.5 before the vocabulary projection. None: exactly
  # when logits_via_embedding (T5's rule; Hugging Face's `scale_decoder_outputs` can differ).
  scale_logits: bool | None = None
  relpos_num_buckets: int = 32
  relpos_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  dropout_rate: float = 0.0

  positive = lm_config.LMConfig.positive + ("emb_dim", "relpos_num_buckets",
                                            "relpos_max_distance")

  def __post_init__(self):
    super().__post_init__()
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    for act in self.mlp_activations:
      if act not in layers.ACTIVATIONS:
        raise ConfigError(f"T5Config.mlp_activations: unknown activation {act!r}; known: "
                          f"{sorted(layers.ACTIVATIONS)}")

  @property
  def logits_scaled(self) -> bool:
    return self.logits_via_embedding if self.scale_logits is None else self.scale_logits


_V1_1 = dict(mlp_activations=("gelu", "linear"), logits_via_embedding=False)
_V1_0 = dict(mlp_activations=("relu",), logits_via_embedding=True)
_UL2 = dict(mlp_activations=("silu", "linear"), logits_via_embedding=False)


def _size(emb, heads, head_dim, mlp, enc, dec, style, **kw):
  return {"vocab_size": 32128, "emb_dim": emb, "num_heads": heads, "head_dim": head_dim,
          "mlp_dim": mlp, "num_encoder_layers": enc, "num_decoder_layers": dec, **style, **kw}


# emb_dim, num_heads, head_dim, mlp_dim, encoder layers, decoder layers. Sources: the released
# Hugging Face config.json of google/t5-v1_1-*, t5-* and google/ul2 (identical to t5x's gin
# files). "ul2_3b" is the "3B UL2" of PaLI-3 (arXiv 2310.09199, Sec. 2.1), whose dimensions are not
# published: we take the T5 v1.1 XL shape (the standard ~2.9B encoder-decoder) with UL2's gated
# SiLU; importing real weights always takes the dimensions from the checkpoint instead.
SIZES: dict[str, dict[str, Any]] = {
    "t5_1_1_small": _size(512, 6, 64, 1024, 8, 8, _V1_1),
    "t5_1_1_base": _size(768, 12, 64, 2048, 12, 12, _V1_1),
    "t5_1_1_large": _size(1024, 16, 64, 2816, 24, 24, _V1_1),
    "t5_1_1_xl": _size(2048, 32, 64, 5120, 24, 24, _V1_1),
    "t5_1_1_xxl": _size(4096, 64, 64, 10240, 24, 24, _V1_1),
    "t5_small": _size(512, 8, 64, 2048, 6, 6, _V1_0),
    "t5_base": _size(768, 12, 64, 3072, 12, 12, _V1_0),
    "t5_large": _size(1024, 16, 64, 4096, 24, 24, _V1_0),
    "t5_3b": _size(1024, 32, 128, 16384, 24, 24, _V1_0),
    "t5_11b": _size(1024, 128, 128, 65536, 24, 24, _V1_0),
    "ul2": _size(4096, 16, 256, 16384, 32, 32, _UL2),
    "ul2_3b": _size(2048, 32, 64, 5120, 24, 24, _UL2),
    # Test / CPU smoke sizes.
    "tiny": _size(32, 4, 8, 64, 2, 2, _V1_1, vocab_size=128),
    "tiny_v1_0": _size(32, 4, 8, 64, 2, 2, _V1_0, vocab_size=128),
    # CPU miniatures of the pipeline (configs/pipeline.py): wider than "tiny", as shallow.
    "mini": _size(64, 4, 16, 128, 2, 2, _V1_1, vocab_size=128),
    "midi": _size(128, 4, 32, 256, 2, 2, _V1_1, vocab_size=128),
}
ALIASES = {"small": "t5_1_1_small", "base": "t5_1_1_base", "large": "t5_1_1_large",
           "xl": "t5_1_1_xl", "xxl": "t5_1_1_xxl", "t5_xl": "t5_3b", "t5_xxl": "t5_11b"}


def decode_variant(variant: str, **overrides: Any) -> T5Config:
  """`"base"` (or any name in SIZES / ALIASES) -> T5Config; `overrides` replace fields."""
  return lm_config.decode_variant(T5Config, SIZES, variant, overrides, family="T5",
                                  aliases=ALIASES)


def shift_right(tokens: Array, start_id: int = START_ID) -> Array:
  """Teacher-forcing decoder inputs: `[B, L]` targets -> `[start, t_0, ..., t_{L-2}]`."""
  start = jnp.full(tokens.shape[:-1] + (1,), start_id, tokens.dtype)
  return jnp.concatenate([start, tokens[..., :-1]], axis=-1)


class Encoder(nn.Module):
  """Embedded inputs `[B, S, D]` + key mask `[B, S]` bool -> encoded `[B, S, D]`."""
  config: T5Config

  @nn.compact
  def __call__(self, x: Array, mask: Array, deterministic: bool) -> Array:
    cfg = self.config
    length = x.shape[1]
    relpos = layers.RelativePositionBiases(
        cfg.relpos_num_buckets, cfg.relpos_max_distance, cfg.num_heads, bidirectional=True,
        dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="relpos_bias")
    bias = relpos(jnp.arange(length), jnp.arange(length))
    key_mask = mask[:, None, None, :]
    x = nn.Dropout(cfg.dropout_rate)(x, deterministic=deterministic)
    # `self` is argument 0 for flax's lifted remat; `deterministic` (4) must be static.
    if cfg.scan_layers:
      stack = layer_stack.scanned(layer_stack.as_carry(layers.EncoderLayer),
                                  cfg.num_encoder_layers, cfg.remat_policy,
                                  in_axes=(nn.broadcast,) * 3, static_argnums=(4,))
      x, _ = stack(cfg, name="layers")(x, key_mask, bias, deterministic)
    else:
      layer_cls = layer_stack.remat(layers.EncoderLayer, cfg.remat_policy, static_argnums=(4,))
      for i in range(cfg.num_encoder_layers):
        x = layer_cls(cfg, name=f"layers_{i}")(x, key_mask, bias, deterministic)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.dtype, cfg.param_dtype, name="encoder_norm")(x)
    return nn.Dropout(cfg.dropout_rate)(x, deterministic=deterministic)


class Decoder(nn.Module):
  """Causal decoder over the encoder output; teacher forcing (`__call__`) or one cached step."""
  config: T5Config
  shared_embedding: nn.Module

  def setup(self):
    cfg = self.config
    self.relpos_bias = layers.RelativePositionBiases(
        cfg.relpos_num_buckets, cfg.relpos_max_distance, cfg.num_heads, bidirectional=False,
        dtype=cfg.dtype, param_dtype=cfg.param_dtype)
    # `deterministic` (argument 7, counting self) must be static under remat.
    if cfg.scan_layers:
      # Per-layer inputs (cross K/V, the cache) are stacked on axis 1, so that every leaf of a
      # decoding cache keeps the batch first (decoding.py reorders beams along axis 0).
      b = nn.broadcast
      self.layers = layer_stack.scanned(
          layers.DecoderLayer, cfg.num_decoder_layers, cfg.remat_policy,
          in_axes=(1, 1, b, b, b, b, 1, b), out_axes=1, static_argnums=(7,),
          methods={"cross_kv_scan": dict(in_axes=(b,), out_axes=1)})(cfg)  # -> layers
    else:
      layer_cls = layer_stack.remat(layers.DecoderLayer, cfg.remat_policy, static_argnums=(7,))
      self.layers = [layer_cls(cfg) for _ in range(cfg.num_decoder_layers)]  # -> layers_0, ...
    self.decoder_norm = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.dtype, cfg.param_dtype)
    self.drop = nn.Dropout(cfg.dropout_rate)
    if not cfg.logits_via_embedding:
      self.logits_dense = nn.Dense(
          cfg.vocab_size, use_bias=False, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
          kernel_init=partitioned(
              nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
              ("embed", "vocab")))

  def cross_kv(self, encoded: Array) -> Any:
    """Unrolled: `[(keys, values) [B, S, H, K]]` per layer; scanned: `(keys, values)` stacked
    `[B, layers, S, H, K]`."""
    if self.config.scan_layers:
      return self.layers.cross_kv_scan(None, encoded)[1]
    return [layer.cross_kv(encoded) for layer in self.layers]

  def _logits(self, y: Array, deterministic: bool) -> Array:
    cfg = self.config
    y = self.drop(self.decoder_norm(y), deterministic=deterministic)
    if cfg.logits_scaled:
      y = y * cfg.emb_dim ** -0.5
    if cfg.logits_via_embedding:
      logits = self.shared_embedding.attend(y)
    else:
      logits = self.logits_dense(y)
    return constrain(logits, ("batch", "length", "vocab"))

  def __call__(self, decoder_input_tokens: Array, encoded: Array, encoder_mask: Array,
               deterministic: bool) -> Array:
    length = decoder_input_tokens.shape[1]
    y = self.drop(self.shared_embedding(decoder_input_tokens), deterministic=deterministic)
    bias = self.relpos_bias(jnp.arange(length), jnp.arange(length))
    self_mask = layers.causal_mask(length)
    cross_mask = encoder_mask[:, None, None, :]
    if self.config.scan_layers:
      k, v = self.cross_kv(encoded)
      y, _ = self.layers(y, k, v, cross_mask, self_mask, bias, deterministic, None, None)
    else:
      for layer, (k, v) in zip(self.layers, self.cross_kv(encoded)):
        y, _ = layer(y, k, v, cross_mask, self_mask, bias, deterministic)
    return self._logits(y, deterministic)

  def decode_step(self, tokens: Array, cache: Any, static: dict[str, Any], step: Array
                  ) -> tuple[Array, Any]:
    scan = self.config.scan_layers
    max_len = (cache["key"].shape[2] if scan else cache[0]["key"].shape[1])
    y = self.shared_embedding(tokens[:, None])
    positions = jnp.arange(max_len)
    bias = self.relpos_bias(jnp.reshape(step, (1,)), positions)  # [1, H, 1, max_len]
    self_mask = (positions <= step)[None, None, None, :]
    cross_mask = static["encoder_mask"][:, None, None, :]
    if scan:
      k, v = static["cross_kv"]
      y, cache = self.layers(y, k, v, cross_mask, self_mask, bias, True, cache, step)
      return self._logits(y, True)[:, 0], cache
    new_cache = []
    for layer, (k, v), layer_cache in zip(self.layers, static["cross_kv"], cache):
      y, layer_cache = layer(y, k, v, cross_mask, self_mask, bias, True, layer_cache, step)
      new_cache.append(layer_cache)
    return self._logits(y, True)[:, 0], new_cache


class T5(nn.Module):
  """The T5 encoder-decoder; see the module docstring for the methods and shapes."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.token_embedder = token_embedding(cfg, cfg.emb_dim)
    self.encoder = Encoder(cfg)
    self.decoder = Decoder(cfg, shared_embedding=self.token_embedder)

  def encode(self, tokens: Array, *, mask: Array | None = None, prefix: Array | None = None,
             prefix_mask: Array | None = None, train: bool = False) -> tuple[Array, Array]:
    """Encodes `tokens [B, S] int32` after an optional embedded `prefix [B, P, D]`.

    `mask` defaults to `tokens != 0`, `prefix_mask` to all valid (PaLI's visual tokens). Returns
    `(encoded [B, P+S, D], mask [B, P+S] bool)`.
    """
    x = self.token_embedder(tokens)
    mask = tokens != PAD_ID if mask is None else mask.astype(bool)
    if prefix is not None:
      if prefix_mask is None:
        prefix_mask = jnp.ones(prefix.shape[:2], bool)
      x = jnp.concatenate([prefix.astype(x.dtype), x], axis=1)
      mask = jnp.concatenate([prefix_mask.astype(bool), mask], axis=1)
    x = constrain(x, ("batch", "length", "embed"))
    return self.encoder(x, mask, not train), mask

  def decode(self, encoded: Array, encoder_mask: Array, decoder_input_tokens: Array, *,
             train: bool = False) -> Array:
    """Teacher-forced logits `[B, L, V]` for `decoder_input_tokens [B, L]` (already shifted)."""
    return self.decoder(decoder_input_tokens, encoded, encoder_mask, not train)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array, *,
               train: bool = False) -> tuple[Array, dict[str, Array]]:
    encoded, mask = self.encode(encoder_input_tokens, train=train)
    logits = self.decode(encoded, mask, decoder_input_tokens, train=train)
    return logits, {"encoded": encoded, "encoder_mask": mask}

  def init_cache(self, encoded: Array, encoder_mask: Array, max_len: int
                 ) -> tuple[list[dict[str, Array]], dict[str, Any]]:
    """Decoding state for `encoded [B, S, D]`.

    Returns `(cache, static)`: `cache` is per layer `{"key", "value": [B, max_len, H, K]}` zeros
    (self-attention, filled one position per step); `static` holds the cross-attention keys and
    values of every layer `[B, S, H, K]` and `encoder_mask [B, S]`, computed here once. Every
    leaf has the batch as leading axis (what decoding.py's beam reordering relies on). With
    `scan_layers` the layers are stacked on axis 1 instead of listed: `cache` is one
    `{"key", "value": [B, layers, max_len, H, K]}`, the cross keys/values `[B, layers, S, H, K]`.
    """
    cfg = self.config
    shape = (encoded.shape[0], max_len, cfg.num_heads, cfg.head_dim)
    if cfg.scan_layers:
      stacked = shape[:1] + (cfg.num_decoder_layers,) + shape[1:]
      cache = {"key": jnp.zeros(stacked, cfg.dtype), "value": jnp.zeros(stacked, cfg.dtype)}
      static = {"cross_kv": self.decoder.cross_kv(encoded),
                "encoder_mask": encoder_mask.astype(bool)}
      return cache, static
    cache = [{"key": jnp.zeros(shape, cfg.dtype), "value": jnp.zeros(shape, cfg.dtype)}
             for _ in range(cfg.num_decoder_layers)]
    static = {"cross_kv": self.decoder.cross_kv(encoded), "encoder_mask": encoder_mask.astype(bool)}
    return cache, static

  def decode_step(self, tokens: Array, cache: Sequence[dict[str, Array]], static: dict[str, Any],
                  step: Array) -> tuple[Array, list[dict[str, Array]]]:
    """Logits `[N, V]` for decoder input `tokens [N]` at position `step`; the updated cache."""
    return self.decoder.decode_step(tokens, cache, static, step)
