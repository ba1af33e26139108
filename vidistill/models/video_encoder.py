"""Video encoder: an image ViT on every frame + a zero-initialised temporal embedding.

The paper's visual adaptation (Zhao et al., CVPR 2024, Sec. 3.1) turns the image VLM's ViT into a
video encoder by encoding frames independently and feeding the concatenated frame tokens to the
LM (PaLI/PaLI-3 style, big_vision paligemma `embed_image` folds frames into the batch). The
temporal embedding starts at zero, so at initialisation (or right after importing an image
checkpoint into `params["image"]`) a video of T copies of one image gives exactly the image
model's tokens, T times.

Motion: frames are encoded independently, so nothing in the vision tower compares two frames; with
the LM frozen in visual adaptation, nothing trainable does. `frame_difference` adds a second patch
embedding of `frame_t - frame_{t-1}` (zero for the first frame) to every frame's patch embeddings,
zero-initialised like the temporal embedding: at init the model is the image model, and a static
video gives the image model's tokens whatever the weights. A supervised probe on the synthetic
world (first action of 12, 800 steps, docs/pipeline.md) reached 57% held-out without it, 80% with;
through the frozen LM's caption loss it bought nothing measurable, so the configs leave it off.

Token budget: `spatial_tokens` mean-pools each frame's h x w grid to S = s x s tokens and
`temporal_pool` averages groups of k consecutive frames; both off = all T * N frame tokens.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.models import vit as vit_lib

Array = jax.Array


def pool_grid(tokens: Array, grid: tuple[int, int], side: int) -> Array:
  """Mean-pools `[B, h*w, D]` grid tokens to `[B, side*side, D]` (h, w divisible by side)."""
  h, w = grid
  if h % side or w % side:
    raise ValueError(
        f"cannot pool a {h}x{w} token grid to {side}x{side}: pick spatial_tokens = s*s with s "
        f"dividing both {h} and {w}")
  b, _, d = tokens.shape
  x = tokens.reshape(b, side, h // side, side, w // side, d)
  return x.mean(axis=(2, 4)).reshape(b, side * side, d)


class VideoEncoder(nn.Module):
  """`image` (a `vit.ViT`) applied per frame; params live under "image", "temporal_embedding" and
  (with `frame_difference`) "difference_embedding".

  `__call__(video [B, T, H, W, 3] float in [-1, 1], train=False) -> (tokens, aux)`:
    tokens: `[B, (T // temporal_pool) * S, D]`, S = spatial_tokens or the full h*w grid, D the
      ViT width; frame-major order (all tokens of frame 0, then frame 1, ...).
    aux: "frame_embeddings" [B, T, E] (the ViT's per-frame output: MAP/gap pooled, through its
      head if it has one), "pooled" [B, E] (mean over frames), "frame_tokens" [B, T, N, D]
      (per-frame tokens incl. temporal embedding, before pooling), "num_frames" T.
  """
  image: vit_lib.ViT
  max_frames: int = 64
  temporal_embedding: bool = True
  frame_difference: bool = False
  spatial_tokens: int | None = None
  temporal_pool: int = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, video: Array, *, train: bool = False) -> tuple[Array, dict[str, Any]]:
    if video.ndim != 5:
      raise ValueError(f"VideoEncoder expects [B, T, H, W, 3] video, got shape {video.shape}")
    b, t = video.shape[:2]
    if t > self.max_frames:
      raise ValueError(f"video has {t} frames but VideoEncoder.max_frames={self.max_frames}")
    if self.temporal_pool < 1 or t % self.temporal_pool:
      raise ValueError(f"temporal_pool={self.temporal_pool} must divide the {t} frames")
    video = nn.with_logical_constraint(video, ("batch", "frames", None, None, None))
    frames = video.reshape(b * t, *video.shape[2:])  # frames folded into the batch
    stem_extra = self._difference_embedding(video) if self.frame_difference else None
    frame_out, img_aux = self.image(frames, train=train, stem_extra=stem_extra)
    tokens = img_aux["encoded"]  # [B*T, N, D]
    n, d = tokens.shape[1:]
    tokens = tokens.reshape(b, t, n, d)
    if self.temporal_embedding:
      temb = self.param(
          "temporal_embedding",
          nn.with_logical_partitioning(nn.initializers.zeros, ("frames", "embed")),
          (self.max_frames, d), self.param_dtype)
      tokens = tokens + temb[:t, None, :].astype(tokens.dtype)
    tokens = nn.with_logical_constraint(tokens, ("batch", "frames", "length", "embed"))
    aux: dict[str, Any] = {"frame_tokens": tokens, "num_frames": t}
    frame_emb = frame_out.reshape(b, t, *frame_out.shape[1:])
    aux["frame_embeddings"] = frame_emb
    aux["pooled"] = frame_emb.mean(axis=1)

    if self.spatial_tokens is not None:
      side = math.isqrt(self.spatial_tokens)
      if side * side != self.spatial_tokens:
        raise ValueError(f"spatial_tokens={self.spatial_tokens} is not a square number")
      tokens = pool_grid(tokens.reshape(b * t, n, d), img_aux["grid"], side).reshape(b, t, -1, d)
    if self.temporal_pool > 1:
      k = self.temporal_pool
      tokens = tokens.reshape(b, t // k, k, *tokens.shape[2:]).mean(axis=2)
    tokens = tokens.reshape(b, -1, d)
    return nn.with_logical_constraint(tokens, ("batch", "length", "embed")), aux

  def _difference_embedding(self, video: Array) -> Array:
    """`[B*T, h, w, D]` patch embedding of each frame minus the one before (first: zeros)."""
    b, t = video.shape[:2]
    diff = jnp.concatenate([jnp.zeros_like(video[:, :1]), video[:, 1:] - video[:, :-1]], axis=1)
    dims = self.image.dims()
    # No bias: a static video must add exactly zero.
    emb = nn.Conv(dims.width, dims.patch_size, strides=dims.patch_size, padding="VALID",
                  use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                  kernel_init=nn.with_logical_partitioning(
                      nn.initializers.zeros, (None, None, None, "embed")),
                  name="difference_embedding")
    return emb(diff.reshape(b * t, *diff.shape[2:]))


def num_tokens(grid: tuple[int, int], num_frames: int, spatial_tokens: int | None = None,
               temporal_pool: int = 1) -> int:
  """Token count VideoEncoder returns for a frame grid (h, w): for sizing LM sequence lengths."""
  per_frame = spatial_tokens if spatial_tokens is not None else grid[0] * grid[1]
  return (num_frames // temporal_pool) * per_frame
