"""SigLIP-compatible Vision Transformer (big_vision models/vit.py layout), logically partitioned.

Parameter names follow big_vision's ViT exactly (`embedding`, `pos_embedding`,
`Transformer/encoderblock_{i}/{LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1,
MlpBlock_0}`, `Transformer/encoder_norm`, `MAPHead_0`, `head`) so a SigLIP `.npz` maps one to one
(convert/siglip.py). `Encoder` (the pre-LN block stack) is shared with the text tower and the
temporal transformer of the dual encoder.

Inputs are images in [-1, 1] (SigLIP's normalisation): `[B, H, W, 3] float32`; `normalize_uint8`
converts `uint8` pixels.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidistill.models import layer_stack
from vidistill.models.layers import Projection, constrain, partitioned

Dtype = Any
Array = jax.Array

# Reference: Table 2 of https://arxiv.org/abs/2106.04560 (ViT scaling), So400m from the SigLIP
# paper (https://arxiv.org/abs/2303.15343, "shape-optimised"), both as big_vision decodes them.
# width, depth, mlp_dim, num_heads. "mu" and "nu" are tiny sizes for tests and CPU smoke runs.
_SIZES = {
    "mu": (32, 2, 64, 2),
    "nu": (64, 2, 128, 4),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
    "H": (1280, 32, 5120, 16),
    "g": (1408, 40, 6144, 16),
    "G": (1664, 48, 8192, 16),
}
POOL_TYPES = ("map", "gap", "tok", "0", "none")


class VariantError(ValueError):
  """An unknown model size string."""


def decode_variant(variant: str) -> dict[str, Any]:
  """`"B/16"` -> dict(width=768, depth=12, mlp_dim=3072, num_heads=12, patch_size=(16, 16)).

  The patch part is optional (`"So400m"`); without it no `patch_size` key is returned.
  """
  name, _, patch = variant.partition("/")
  if name not in _SIZES:
    raise VariantError(f"unknown ViT size {name!r} in {variant!r}; known sizes: {sorted(_SIZES)}")
  width, depth, mlp_dim, num_heads = _SIZES[name]
  out = dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=num_heads)
  if patch:
    try:
      p = int(patch)
    except ValueError:
      raise VariantError(f"patch size {patch!r} in {variant!r} is not an integer") from None
    out["patch_size"] = (p, p)
  return out


def normalize_uint8(x: Array | np.ndarray) -> Array:
  """`uint8` pixels in [0, 255] (any shape) -> float32 in [-1, 1], SigLIP's input range."""
  return jnp.asarray(x, jnp.float32) / 127.5 - 1.0


_XAVIER = nn.initializers.xavier_uniform()
_TINY_NORMAL = nn.initializers.normal(stddev=1e-6)


def _xavier(n_in: int) -> Callable[..., Any]:
  """Xavier-uniform over a 3-D attention kernel: the first `n_in` axes fan in, the rest fan out."""
  return nn.initializers.xavier_uniform(in_axis=tuple(range(n_in)),
                                        out_axis=tuple(range(n_in, 3)))


def LayerNorm(name: str, dtype: Dtype = jnp.float32,  # pylint: disable=invalid-name
              param_dtype: Dtype = jnp.float32) -> nn.LayerNorm:
  """nn.LayerNorm with "norm"-named scale/bias; eps 1e-6 as big_vision and HF SigLIP."""
  return nn.LayerNorm(epsilon=1e-6, dtype=dtype, param_dtype=param_dtype,
                      scale_init=partitioned(nn.initializers.ones, ("norm",)),
                      bias_init=partitioned(nn.initializers.zeros, ("norm",)), name=name)


class MlpBlock(nn.Module):
  """Dense(mlp_dim) -> GELU (tanh approximation, as SigLIP) -> Dense(width)."""
  mlp_dim: int
  dropout: float = 0.0
  zero_init_out: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    d = x.shape[-1]
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(_XAVIER, ("embed", "mlp")),
                 bias_init=partitioned(_TINY_NORMAL, ("mlp",)), name="Dense_0")(x)
    x = constrain(x, ("batch", "length", "mlp"))
    x = nn.gelu(x, approximate=True)
    x = nn.Dropout(rate=self.dropout)(x, deterministic)
    zeros = nn.initializers.zeros
    return nn.Dense(d, dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=partitioned(zeros if self.zero_init_out else _XAVIER,
                                            ("mlp", "embed")),
                    bias_init=partitioned(zeros if self.zero_init_out else _TINY_NORMAL,
                                          ("embed",)),
                    name="Dense_1")(x)


class PatchEmbedding(nn.Module):
  """`[B, H, W, C]` -> `[B, H // ph, W // pw, width]`: a VALID convolution with stride = patch size.

  Written as reshape + matmul, with nn.Conv's parameters (`kernel` [ph, pw, C, width], `bias`
  [width], same initialiser), so checkpoints and the converters are unchanged. Why: on CPU, XLA's
  gradient of this convolution fell back to a slow generic kernel when several training steps run
  in one compiled loop; the matmul is the same function with the patch sums in another order.
  """
  width: int
  patch_size: tuple[int, int]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: Array) -> Array:
    ph, pw = self.patch_size
    b, height, width, c = image.shape
    kernel = self.param("kernel", partitioned(nn.initializers.lecun_normal(),
                                              (None, None, None, "embed")),
                        (ph, pw, c, self.width), self.param_dtype)
    bias = self.param("bias", partitioned(nn.initializers.zeros, ("embed",)), (self.width,),
                      self.param_dtype)
    image, kernel, bias = nn.dtypes.promote_dtype(image, kernel, bias, dtype=self.dtype)
    h, w = height // ph, width // pw  # VALID: a partial patch at the border is dropped.
    patches = image[:, :h * ph, :w * pw].reshape(b, h, ph, w, pw, c)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, ph * pw * c)
    return patches @ kernel.reshape(ph * pw * c, self.width) + bias


class Attention(nn.Module):
  """Multi-head attention with big_vision's (flax MHDPA) parameter layout.

  query/key/value kernels are `[embed, heads, kv]`, out is `[heads, kv, embed]`, so heads shard
  over 'model'. The product itself is `jax.nn.dot_product_attention` (fused kernels on GPU).
  """
  num_heads: int
  zero_init_out: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, q_in: Array, kv_in: Array, mask: Array | None = None) -> Array:
    """q_in [B, Lq, D], kv_in [B, Lk, D], mask [B, Lk] bool (True = attend) -> [B, Lq, D]."""
    d = q_in.shape[-1]
    if d % self.num_heads:
      raise ValueError(f"width {d} is not divisible by num_heads={self.num_heads}")
    head_dim = d // self.num_heads
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)

    def proj(name, x):
      y = Projection((self.num_heads, head_dim), ("embed", "heads", "kv"), 1,
                     kernel_init=_xavier(1), use_bias=True, **kw, name=name)(x)
      return constrain(y, ("batch", "length", "heads", "kv"))

    q, k, v = proj("query", q_in), proj("key", kv_in), proj("value", kv_in)
    if mask is not None:
      mask = mask[:, None, None, :].astype(bool)  # [B, 1 (heads), 1 (queries), Lk]
    y = jax.nn.dot_product_attention(q, k, v, mask=mask)
    y = Projection((d,), ("heads", "kv", "embed"), 2, use_bias=True,
                   kernel_init=nn.initializers.zeros if self.zero_init_out else _xavier(2),
                   **kw, name="out")(y)
    return constrain(y, ("batch", "length", "embed"))


class Encoder1DBlock(nn.Module):
  """Pre-LN transformer block: x + MHA(LN(x)), then x + MLP(LN(x))."""
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  zero_init_residual: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None, deterministic: bool = True) -> Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = constrain(x, ("batch", "length", "embed"))
    y = LayerNorm("LayerNorm_0", **kw)(x)
    y = Attention(self.num_heads, zero_init_out=self.zero_init_residual, **kw,
                  name="MultiHeadDotProductAttention_0")(y, y, mask)
    x = x + nn.Dropout(rate=self.dropout)(y, deterministic)
    y = LayerNorm("LayerNorm_1", **kw)(x)
    y = MlpBlock(self.mlp_dim, self.dropout, zero_init_out=self.zero_init_residual, **kw,
                 name="MlpBlock_0")(y, deterministic)
    x = x + nn.Dropout(rate=self.dropout)(y, deterministic)
    return constrain(x, ("batch", "length", "embed"))


class Encoder(nn.Module):
  """`depth` pre-LN blocks and an optional final LayerNorm (`encoder_norm`).

  Unrolled, block i is `encoderblock_{i}`; with `scan`, one `encoderblock` whose parameters have a
  leading `[depth]` axis (big_vision's scanned layout; models/layer_stack.py converts between the
  two). `remat_policy` (layer_stack.REMAT_POLICIES: none | full | dots) says what the backward
  pass recomputes of each block (memory for ~30% more compute with "full").
  `zero_init_residual` zero-initialises every residual branch's output projection, making the
  stack the identity at init (used by the temporal transformer so an image model is unchanged).
  """
  depth: int
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  remat_policy: str = "none"
  final_norm: bool = True
  zero_init_residual: bool = False
  scan: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None,
               deterministic: bool = True) -> tuple[Array, dict[str, Array]]:
    """x [B, L, D], mask [B, L] bool or None -> (x [B, L, D], {"pre_ln": [B, L, D]})."""
    args = (self.mlp_dim, self.num_heads, self.dropout, self.zero_init_residual)
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    # deterministic (arg 3, counting self) is a Python bool: static for the rematted function.
    if self.scan:
      stack = layer_stack.scanned(layer_stack.as_carry(Encoder1DBlock), self.depth,
                                  self.remat_policy, in_axes=(nn.broadcast, nn.broadcast),
                                  static_argnums=(3,))
      x, _ = stack(*args, **kw, name="encoderblock")(x, mask, deterministic)
    else:
      block_cls = layer_stack.remat(Encoder1DBlock, self.remat_policy, static_argnums=(3,))
      for i in range(self.depth):
        x = block_cls(*args, **kw, name=f"encoderblock_{i}")(x, mask, deterministic)
    out = {"pre_ln": x}
    if self.final_norm:
      x = LayerNorm("encoder_norm", self.dtype, self.param_dtype)(x)
    return x, out


class MAPHead(nn.Module):
  """Multihead attention pooling: a learned probe attends over the tokens, then LN + MLP."""
  mlp_dim: int
  num_heads: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None) -> Array:
    """x [B, L, D] -> [B, D]."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    b, _, d = x.shape
    probe = self.param("probe", partitioned(_XAVIER, (None, None, "embed")), (1, 1, d),
                       self.param_dtype)
    probe = jnp.broadcast_to(probe.astype(x.dtype), (b, 1, d))
    x = Attention(self.num_heads, **kw, name="MultiHeadDotProductAttention_0")(probe, x, mask)
    y = LayerNorm("LayerNorm_0", **kw)(x)
    x = x + MlpBlock(self.mlp_dim, **kw, name="MlpBlock_0")(y)
    return x[:, 0]


def resample_posemb(posemb: Array | np.ndarray, new_grid: tuple[int, int]) -> Array:
  """Bilinearly resizes a `[1, h*w, D]` square position grid to `[1, H*W, D]` (high-res finetune)."""
  n, d = posemb.shape[1], posemb.shape[2]
  side = int(round(np.sqrt(n)))
  if side * side != n:
    raise ValueError(f"position embedding of {n} positions is not a square grid")
  if (side, side) == tuple(new_grid):
    return jnp.asarray(posemb)
  grid = jnp.asarray(posemb, jnp.float32).reshape(side, side, d)
  grid = jax.image.resize(grid, (*new_grid, d), method="linear")
  return grid.reshape(1, new_grid[0] * new_grid[1], d)


@dataclasses.dataclass(frozen=True)
class Size:
  width: int
  depth: int
  mlp_dim: int
  num_heads: int
  patch_size: tuple[int, int] | None = None


def resolve_size(variant: str | None, *, need_patch: bool = True, **overrides: Any) -> Size:
  """The decoded `variant` with every non-None override applied; errors name what is unset."""
  vals = decode_variant(variant) if variant else {}
  vals.update({k: v for k, v in overrides.items() if v is not None})
  fields = ("width", "depth", "mlp_dim", "num_heads") + (("patch_size",) if need_patch else ())
  for f in fields:
    if vals.get(f) is None:
      raise VariantError(f"{f} is unset: give variant='B/16' (size/patch) or {f}=...")
  if vals.get("patch_size") is not None:
    vals["patch_size"] = tuple(vals["patch_size"])
  return Size(**{k: vals.get(k) for k in Size.__dataclass_fields__})


class ViT(nn.Module):
  """Vision Transformer; sizes from `variant` ("B/16", "So400m/14", "mu/8"), fields override it.

  `__call__(image [B, H, W, 3] float in [-1, 1], train=False, stem_extra=None) -> (out, aux)`:
    stem_extra: optional `[B, h, w, D]` added to the patch embeddings (the video encoder's
      frame-difference embedding enters here, before the position embedding).
    out: `[B, head_dim]` if `head_dim` else the pooled `[B, width]` (`[B, N, width]` for
      pool_type "none").
    aux: "stem" [B, h, w, D] (patch embeddings), "with_posemb" [B, N, D], "pre_ln" [B, N, D]
      (last block, before the final LN), "encoded" [B, N, D] (tokens after the final LN, without
      the class token), "pre_logits" (pooled), "logits" (head output, if any), "grid" (h, w).
  """
  variant: str | None = None
  width: int | None = None
  depth: int | None = None
  mlp_dim: int | None = None
  num_heads: int | None = None
  patch_size: tuple[int, int] | None = None
  pool_type: str = "map"
  head_dim: int | None = None  # A final Dense (SigLIP's image projection); None = no head.
  head_zeroinit: bool = False
  dropout: float = 0.0
  remat_policy: str = "none"  # layer_stack.REMAT_POLICIES: none | full | dots
  scan: bool = False  # nn.scan over the blocks (parameters `encoderblock/...` with a depth axis)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def dims(self) -> Size:
    """Size after applying field overrides to the decoded variant."""
    return resolve_size(self.variant, width=self.width, depth=self.depth, mlp_dim=self.mlp_dim,
                        num_heads=self.num_heads, patch_size=self.patch_size)

  @nn.compact
  def __call__(self, image: Array, *, train: bool = False, stem_extra: Array | None = None
               ) -> tuple[Array, dict[str, Any]]:
    if self.pool_type not in POOL_TYPES:
      raise ValueError(f"ViT.pool_type={self.pool_type!r} is not one of {POOL_TYPES}")
    dims = self.dims()
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    out: dict[str, Any] = {}
    image = constrain(image, ("batch", None, None, None))
    x = PatchEmbedding(dims.width, dims.patch_size, **kw, name="embedding")(image)
    if stem_extra is not None:
      if stem_extra.shape != x.shape:
        raise ValueError(f"ViT stem_extra has shape {stem_extra.shape}, the patch embeddings "
                         f"{x.shape}")
      x = x + stem_extra.astype(x.dtype)
    out["stem"] = x
    b, h, w, d = x.shape
    out["grid"] = (h, w)
    x = x.reshape(b, h * w, d)
    posemb = self.param("pos_embedding",
                        partitioned(nn.initializers.normal(stddev=1 / np.sqrt(d)),
                                    (None, "posemb", "embed")),
                        (1, h * w, d), self.param_dtype)
    x = out["with_posemb"] = x + posemb.astype(x.dtype)
    if self.pool_type == "tok":
      cls = self.param("cls", partitioned(nn.initializers.zeros, (None, None, "embed")), (1, 1, d),
                       self.param_dtype)
      x = jnp.concatenate([jnp.broadcast_to(cls.astype(x.dtype), (b, 1, d)), x], axis=1)
    x = constrain(x, ("batch", "length", "embed"))
    x = nn.Dropout(rate=self.dropout)(x, not train)
    x, enc_out = Encoder(dims.depth, dims.mlp_dim, dims.num_heads, self.dropout, self.remat_policy,
                         scan=self.scan, **kw, name="Transformer")(x, deterministic=not train)
    out.update(enc_out)
    encoded = x[:, 1:] if self.pool_type == "tok" else x
    out["encoded"] = encoded

    if self.pool_type == "map":
      x = MAPHead(dims.mlp_dim, dims.num_heads, **kw, name="MAPHead_0")(x)
    elif self.pool_type == "gap":
      x = jnp.mean(x, axis=1)
    elif self.pool_type in ("tok", "0"):
      x = x[:, 0]
    out["pre_logits"] = x
    if self.head_dim:
      init = nn.initializers.zeros if self.head_zeroinit else nn.initializers.lecun_normal()
      x = out["logits"] = nn.Dense(
          self.head_dim, **kw, kernel_init=partitioned(init, ("embed", "mlp")),
          bias_init=partitioned(nn.initializers.zeros, ("mlp",)), name="head")(x)
    return x, out
