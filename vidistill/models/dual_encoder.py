"""Video-text dual encoder (paper Sec. 4: contrastive training on the pseudo-captions).

Towers, named as big_vision's two_towers so a SigLIP checkpoint maps by name (convert/siglip.py):
  img       `vit.ViT` applied to every frame (frames folded into the batch); its `head` is the
            image projection to the shared embedding width E.
  temporal  "mean" (average the frame embeddings) or "transformer": a zero-initialised temporal
            position embedding + pre-LN blocks whose residual branches start at zero, then the
            mean. Both are exactly the mean at init, so an imported image-text model starts as the
            usual frame-averaging video baseline.
  txt       `TextTransformer`: token embedding + learned positions + pre-LN encoder + pooling
            (last / first / mean over non-padding tokens) + `head` projection to E.
  t, b      log-temperature (init log 10 as SigLIP, or log(1/0.07) as CLIP) and logit bias
            (SigLIP init -10; None for the softmax loss).
Embeddings are L2-normalised. Losses live in contrastive.py.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidistill.models import vit as vit_lib

Array = jax.Array
TEXT_POOL_TYPES = ("last", "first", "mean")
TEMPORAL_TYPES = ("mean", "transformer")
SIGLIP_TEMPERATURE_INIT = math.log(10.0)
CLIP_TEMPERATURE_INIT = math.log(1 / 0.07)


def l2_normalize(x: Array, eps: float = 1e-8) -> Array:
  """x / ||x|| along the last axis, computed in float32."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


class TextTransformer(nn.Module):
  """Text tower: `__call__(tokens [B, L] int32, train=False) -> (emb [B, E or D], aux)`.

  With `mask_padding`, tokens equal to `pad_id` are excluded from attention and pooling, and
  "last" pools the last non-padding token (right padding assumed). SigLIP's own text tower
  attends to its EOS padding and pools position L-1: import it with `mask_padding=False`.
  aux: "transformed" [B, L, D] (after the final LN), "pre_logits" [B, D], "mask" [B, L].
  """
  variant: str | None = "B"
  width: int | None = None
  depth: int | None = None
  mlp_dim: int | None = None
  num_heads: int | None = None
  vocab_size: int = 32_000
  max_len: int = 64
  pool_type: str = "last"
  pad_id: int = 0
  mask_padding: bool = True
  head_dim: int | None = None
  dropout: float = 0.0
  remat_policy: str = "none"  # layer_stack.REMAT_POLICIES: none | full | dots
  scan: bool = False  # nn.scan over the blocks (parameters `Encoder_0/encoderblock/...`)
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens: Array, *, train: bool = False) -> tuple[Array, dict[str, Any]]:
    if self.pool_type not in TEXT_POOL_TYPES:
      raise ValueError(f"TextTransformer.pool_type={self.pool_type!r} not in {TEXT_POOL_TYPES}")
    dims = vit_lib.resolve_size(self.variant, need_patch=False, width=self.width,
                                depth=self.depth, mlp_dim=self.mlp_dim, num_heads=self.num_heads)
    b, length = tokens.shape
    if length > self.max_len:
      raise ValueError(f"text of length {length} exceeds TextTransformer.max_len={self.max_len}")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    tokens = nn.with_logical_constraint(tokens, ("batch", "length"))
    x = nn.Embed(self.vocab_size, dims.width, **kw, name="Embed_0", embedding_init=(
        nn.with_logical_partitioning(nn.initializers.normal(stddev=0.02), ("vocab", "embed"))))(
            tokens)
    posemb = self.param(
        "pos_embedding", nn.with_logical_partitioning(
            nn.initializers.normal(stddev=1 / np.sqrt(dims.width)), (None, "posemb", "embed")),
        (1, self.max_len, dims.width), self.param_dtype)
    x = x + posemb[:, :length].astype(x.dtype)
    x = nn.Dropout(rate=self.dropout)(x, not train)
    mask = (tokens != self.pad_id) if self.mask_padding else jnp.ones_like(tokens, bool)
    x, enc = vit_lib.Encoder(dims.depth, dims.mlp_dim, dims.num_heads, self.dropout,
                             self.remat_policy, scan=self.scan, **kw, name="Encoder_0")(
                                 x, mask if self.mask_padding else None, deterministic=not train)
    aux: dict[str, Any] = {"transformed": x, "pre_ln": enc["pre_ln"], "mask": mask}
    if self.pool_type == "first":
      x = x[:, 0]
    elif self.pool_type == "last":
      last = jnp.maximum(jnp.sum(mask, axis=1) - 1, 0) if self.mask_padding else (
          jnp.full((b,), length - 1))
      x = jnp.take_along_axis(x, last[:, None, None], axis=1)[:, 0]
    else:
      m = mask[..., None].astype(x.dtype)
      x = jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1)
    aux["pre_logits"] = x
    if self.head_dim:
      x = nn.Dense(self.head_dim, **kw, name="head",
                   kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                            ("embed", "mlp")),
                   bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))(x)
    return x, aux


class TemporalTransformer(nn.Module):
  """Frame embeddings [B, T, E] -> [B, E]: positions + blocks that are the identity at init, mean."""
  depth: int = 1
  num_heads: int = 4
  mlp_dim: int | None = None
  max_frames: int = 64
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    _, t, e = x.shape
    if t > self.max_frames:
      raise ValueError(f"{t} frames exceed TemporalTransformer.max_frames={self.max_frames}")
    pos = self.param("pos_embedding",
                     nn.with_logical_partitioning(nn.initializers.zeros, ("frames", "embed")),
                     (self.max_frames, e), self.param_dtype)
    x = x + pos[:t].astype(x.dtype)
    x, _ = vit_lib.Encoder(self.depth, self.mlp_dim or 4 * e, self.num_heads, final_norm=False,
                           zero_init_residual=True, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="Encoder_0")(x, deterministic=not train)
    return x.mean(axis=1)


class DualEncoder(nn.Module):
  """`__call__(video [B,T,H,W,3] | None, text [B,L] int32 | None, train=False)
  -> ((video_emb [B,E] | None, text_emb [B,E] | None), aux)`; aux has "temperature" (exp(t)),
  "bias" (or None) and the towers' aux under "img"/"txt". Use `encode_video` / `encode_text`
  (via `apply(..., method=...)`) to embed one side, e.g. large retrieval galleries.
  """
  img: vit_lib.ViT
  txt: TextTransformer
  temporal_type: str = "mean"
  temporal_depth: int = 1
  temporal_heads: int = 4
  max_frames: int = 64
  temperature_init: float = SIGLIP_TEMPERATURE_INIT
  bias_init: float | None = -10.0

  def setup(self):
    if self.temporal_type not in TEMPORAL_TYPES:
      raise ValueError(f"DualEncoder.temporal_type={self.temporal_type!r} not in {TEMPORAL_TYPES}")
    if self.temporal_type == "transformer":
      self.temporal = TemporalTransformer(self.temporal_depth, self.temporal_heads,
                                          max_frames=self.max_frames, dtype=self.img.dtype,
                                          param_dtype=self.img.param_dtype)
    scalar = lambda v: nn.with_logical_partitioning(nn.initializers.constant(v), ("norm",))
    self.t = self.param("t", scalar(self.temperature_init), (1,), jnp.float32)
    self.b = (self.param("b", scalar(self.bias_init), (1,), jnp.float32)
              if self.bias_init is not None else None)

  def encode_video(self, video: Array, *, train: bool = False) -> tuple[Array, dict[str, Any]]:
    """video [B, T, H, W, 3] in [-1, 1] -> (L2-normalised [B, E] float32, aux)."""
    if video.ndim != 5:
      raise ValueError(f"encode_video expects [B, T, H, W, 3], got shape {video.shape}")
    b, t = video.shape[:2]
    frames = nn.with_logical_constraint(video.reshape(b * t, *video.shape[2:]),
                                        ("batch", None, None, None))
    per_frame, img_aux = self.img(frames, train=train)
    if per_frame.ndim != 2:
      raise ValueError("the image tower must pool to one vector per frame (pool_type != 'none')")
    frame_emb = per_frame.reshape(b, t, -1)
    if self.temporal_type == "transformer":
      pooled = self.temporal(frame_emb, train=train)
    else:
      pooled = frame_emb.mean(axis=1)
    aux = {"img": img_aux, "frame_embeddings": frame_emb, "pooled": pooled}
    z = nn.with_logical_constraint(l2_normalize(pooled), ("batch", "embed"))
    return z, aux

  def encode_text(self, text: Array, *, train: bool = False) -> tuple[Array, dict[str, Any]]:
    """text [B, L] int32 token ids -> (L2-normalised [B, E] float32, aux)."""
    emb, aux = self.txt(text, train=train)
    return nn.with_logical_constraint(l2_normalize(emb), ("batch", "embed")), aux

  def __call__(self, video: Array | None, text: Array | None, *,
               train: bool = False) -> tuple[tuple[Array | None, Array | None], dict[str, Any]]:
    aux: dict[str, Any] = {"temperature": jnp.exp(self.t[0]),
                           "bias": None if self.b is None else self.b[0]}
    zv = zt = None
    if video is not None:
      zv, aux["video"] = self.encode_video(video, train=train)
    if text is not None:
      zt, aux["txt"] = self.encode_text(text, train=train)
    if zv is not None and zt is not None and zv.shape[-1] != zt.shape[-1]:
      raise ValueError(f"video embeddings have width {zv.shape[-1]} but text embeddings "
                       f"{zt.shape[-1]}: give both towers the same head_dim")
    return (zv, zt), aux
