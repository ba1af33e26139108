"""Rasterises a scene into frames: a grey background and anti-aliased shapes, pure numpy.

Shapes are drawn from signed distance functions (in pixels): a pixel's coverage is
clip(0.5 - distance, 0, 1), which anti-aliases edges with one evaluation per pixel (no
supersampling), so a 16-frame 48 px clip renders in about a millisecond.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from vidistill.data.synthetic import motion
from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.scene import Background, Scene


def shape_distance(shape: str, qx: np.ndarray, qy: np.ndarray, r: np.ndarray | float) -> np.ndarray:
  """Signed distance in pixels (< 0 inside) of points (qx, qy) in the shape's own upright frame.

  `r` is the radius in pixels: every shape fits the box [-r, r]^2 when unrotated. The box-like
  shapes use the max of their edge distances, exact inside and on the edges (what coverage needs).
  """
  ax, ay = np.abs(qx), np.abs(qy)
  if shape == "circle":
    return np.hypot(qx, qy) - r
  if shape == "ring":
    d = np.hypot(qx, qy)
    return np.maximum(d - r, vocab.RING_INNER * r - d)
  if shape == "square":
    return np.maximum(ax, ay) - r
  if shape == "bar":
    return np.maximum(ax - r, ay - vocab.BAR_HALF_HEIGHT * r)
  if shape == "cross":
    arm = vocab.CROSS_ARM * r
    return np.minimum(np.maximum(ax - r, ay - arm), np.maximum(ax - arm, ay - r))
  if shape == "triangle":
    # Apex (0, -r) at the top, base from (-r, r) to (r, r): the sides are 2|x| = y + r.
    return np.maximum(qy - r, (2.0 * ax - qy - r) / math.sqrt(5.0))
  raise ValueError(f"unknown shape {shape!r}; expected one of {vocab.SHAPES}")


def coverage(shape: str, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, angle: np.ndarray,
             resolution: int, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
  """[T, h, w] float32 fraction of each pixel the shape covers; cx, cy, r, angle: [T] in pixels/rad.

  `window` = (top, bottom, left, right) pixel bounds limits the evaluation to that crop (h, w);
  default: the whole [H, W] frame.
  """
  top, bottom, left, right = window or (0, resolution, 0, resolution)
  px = (np.arange(left, right, dtype=np.float32) + 0.5)[None, None, :]
  py = (np.arange(top, bottom, dtype=np.float32) + 0.5)[None, :, None]
  px = px - np.asarray(cx, np.float32)[:, None, None]
  py = py - np.asarray(cy, np.float32)[:, None, None]
  cos = np.cos(angle).astype(np.float32)[:, None, None]
  sin = np.sin(angle).astype(np.float32)[:, None, None]
  qx = cos * px + sin * py  # Rotate the pixel grid by -angle: the shape by +angle.
  qy = cos * py - sin * px
  dist = shape_distance(shape, qx, qy, np.asarray(r, np.float32)[:, None, None])
  return np.clip(0.5 - dist, 0.0, 1.0)


def background(bg: Background, resolution: int) -> np.ndarray:
  """[H, W] float32 grey levels, all inside vocab.BACKGROUND_GREY_RANGE."""
  rng = np.random.default_rng(bg.seed)
  size = resolution
  if bg.kind == "plain":
    image = np.full((size, size), bg.level, np.float32)
  elif bg.kind == "checker":
    cell = max(4, size // 8)
    phase = rng.integers(cell, size=2)
    i = (np.arange(size)[:, None] + phase[0]) // cell
    j = (np.arange(size)[None, :] + phase[1]) // cell
    image = bg.level + np.where((i + j) % 2 == 0, -10.0, 10.0).astype(np.float32)
  elif bg.kind == "noise":
    # Smooth value noise: a coarse random grid, bilinearly upsampled (blob size ~ frame / 4).
    grid = rng.uniform(-14.0, 14.0, size=(6, 6))
    coords = np.linspace(0, grid.shape[0] - 1, size)
    rows = np.stack([np.interp(coords, np.arange(grid.shape[1]), g) for g in grid])
    image = np.stack([np.interp(coords, np.arange(grid.shape[0]), c) for c in rows.T], axis=1)
    image = (bg.level + image).astype(np.float32)
  else:
    raise ValueError(f"unknown background {bg.kind!r}; expected one of {vocab.BACKGROUNDS}")
  low, high = vocab.BACKGROUND_GREY_RANGE
  return np.clip(image, low, high)


def render(scene: Scene, frames: Sequence[int] | None = None) -> np.ndarray:
  """[T, H, W, 3] uint8 frames of the scene (or only the frame indices in `frames`)."""
  res = scene.resolution
  index = np.arange(scene.num_frames) if frames is None else np.asarray(frames, np.int64)
  canvas = np.repeat(background(scene.background, res)[None, :, :, None], 3, axis=-1)
  canvas = np.repeat(canvas, len(index), axis=0)
  for obj in scene.objects:  # In order: a later object is drawn over an earlier one.
    track = motion.object_track(obj, scene.num_frames)
    x, y, ext = track.x[index] * res, track.y[index] * res, track.extent[index] * res
    # Only the pixels the object can touch in these frames (+1 px of anti-aliasing).
    top = max(0, int(np.floor(np.min(y - ext))) - 1)
    bottom = min(res, int(np.ceil(np.max(y + ext))) + 1)
    left = max(0, int(np.floor(np.min(x - ext))) - 1)
    right = min(res, int(np.ceil(np.max(x + ext))) + 1)
    if top >= bottom or left >= right:
      continue
    cov = coverage(obj.shape, x, y, obj.radius * track.scale[index] * res, track.angle[index], res,
                   (top, bottom, left, right))
    cov *= track.visible[index].astype(np.float32)[:, None, None]
    rgb = np.asarray([vocab.COLOURS[track.colour[i]] for i in index], np.float32)
    cov = cov[..., None]
    crop = canvas[:, top:bottom, left:right]
    canvas[:, top:bottom, left:right] = crop + (rgb[:, None, None, :] - crop) * cov
  return np.round(canvas).astype(np.uint8)
