"""Rendering of the synthetic world: every attribute a caption names is visible in the frames."""
import itertools
import math

from matplotlib.path import Path
import numpy as np
import pytest

from vidistill.data.synthetic import motion
from vidistill.data.synthetic import render
from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.scene import Background, Event, Scene, SceneObject

RES = 32  # The smallest resolution the default sizes allow.


def _polygon(shape, r):
  """Outline of a polygonal shape (upright, centred at 0), written from the shape's definition."""
  a, h = vocab.CROSS_ARM * r, vocab.BAR_HALF_HEIGHT * r
  return {
      "square": [(-r, -r), (r, -r), (r, r), (-r, r)],
      "triangle": [(0, -r), (r, r), (-r, r)],
      "bar": [(-r, -h), (r, -h), (r, h), (-r, h)],
      "cross": [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a),
                (-r, a), (-r, -a), (-a, -a)],
  }[shape]


def reference_coverage(shape, cx, cy, r, angle, res, ss=16):
  """[H, W] coverage by brute-force supersampling (ss x ss points per pixel): point-in-polygon
  (matplotlib) or the disc/annulus equation, independent of the renderer's distance functions."""
  offsets = (np.arange(ss) + 0.5) / ss
  xs = (np.arange(res)[:, None] + offsets[None, :]).reshape(-1)
  px, py = np.meshgrid(xs, xs)  # [res*ss, res*ss]
  dx, dy = px - cx, py - cy
  # Express points in the shape's upright frame (rotate by -angle).
  qx = math.cos(angle) * dx + math.sin(angle) * dy
  qy = -math.sin(angle) * dx + math.cos(angle) * dy
  if shape in ("circle", "ring"):
    d = np.hypot(qx, qy)
    inside = d <= r
    if shape == "ring":
      inside &= d >= vocab.RING_INNER * r
  else:
    path = Path(_polygon(shape, r))
    inside = path.contains_points(np.stack([qx.ravel(), qy.ravel()], 1)).reshape(qx.shape)
  return inside.reshape(res, ss, res, ss).mean(axis=(1, 3))


def _coverage(shape, r, angle=0.0, offset=(0.0, 0.0), res=RES):
  c = res / 2
  return render.coverage(shape, np.array([c + offset[0]]), np.array([c + offset[1]]),
                         np.array([r]), np.array([angle]), res)[0]


def _poses(shape):
  return [0.0] + ([0.5 * vocab.SYMMETRY_ANGLE[shape]] if vocab.can_spin(shape) else [])


def soft_iou(a, b):
  return np.minimum(a, b).sum() / np.maximum(a, b).sum()


@pytest.mark.parametrize("shape", vocab.SHAPES)
def test_coverage_matches_supersampled_reference(shape):
  for angle, offset in [(0.0, (0.0, 0.0)), (0.3, (0.37, -0.21)), (1.1, (-0.5, 0.25))]:
    r = 6.3
    got = _coverage(shape, r, angle, offset)
    want = reference_coverage(shape, RES / 2 + offset[0], RES / 2 + offset[1], r, angle, RES)
    assert abs(got.sum() - want.sum()) / want.sum() < 0.04, (shape, angle)
    assert soft_iou(got, want) > 0.93, (shape, angle)


def test_shapes_differ_by_many_pixels_at_the_smallest_size():
  """Pixel overlap between any two shapes, in any pose they can take, at the smallest radius a
  config may ask for: soft IoU <= 0.8 and >= 8 pixels of difference."""
  r = vocab.MIN_RADIUS_PX
  for offset in [(0.0, 0.0), (0.5, 0.5), (0.25, -0.4)]:
    cov = {(s, a): _coverage(s, r, a, offset) for s in vocab.SHAPES for a in _poses(s)}
    for (k1, c1), (k2, c2) in itertools.combinations(cov.items(), 2):
      if k1[0] == k2[0]:
        continue
      assert soft_iou(c1, c2) <= 0.80, (k1, k2, offset)
      assert np.abs(c1 - c2).sum() >= 8, (k1, k2, offset)


def test_the_measure_flags_the_prototype_square():
  """A square of half-side 0.85 r (the 32 px prototype that read as a circle) fails the check."""
  r = vocab.MIN_RADIUS_PX
  small_square = reference_coverage("square", RES / 2, RES / 2, 0.85 * r, 0.0, RES)
  assert soft_iou(small_square, _coverage("circle", r)) > 0.80


def test_default_sizes_are_visible_at_32_px_and_clearly_apart():
  radii = sorted(vocab.SIZES.values())
  assert radii[0] * 32 >= vocab.MIN_RADIUS_PX
  assert all(b / a >= 1.4 for a, b in zip(radii, radii[1:]))


def test_colours_are_far_apart_and_far_from_every_background_grey():
  rgb = {k: np.array(v, float) for k, v in vocab.COLOURS.items()}
  for a, b in itertools.combinations(rgb, 2):
    assert np.linalg.norm(rgb[a] - rgb[b]) >= 100, (a, b)
  low, high = vocab.BACKGROUND_GREY_RANGE
  greys = np.arange(low, high + 1, dtype=float)[:, None] * np.ones(3)
  for name, c in rgb.items():
    assert np.linalg.norm(greys - c, axis=1).min() >= 100, name


@pytest.mark.parametrize("kind", vocab.BACKGROUNDS)
def test_backgrounds_are_grey_and_inside_the_grey_range(kind):
  low, high = vocab.BACKGROUND_GREY_RANGE
  for seed, level in [(0, low + 16), (1, high - 16), (7, 70)]:
    scene = Scene(objects=(), background=Background(kind, level, seed), num_frames=2, resolution=48)
    frames = render.render(scene)
    assert frames.shape == (2, 48, 48, 3) and frames.dtype == np.uint8
    assert (frames[..., 0] == frames[..., 1]).all() and (frames[..., 1] == frames[..., 2]).all()
    assert frames.min() >= low and frames.max() <= high
    if kind != "plain":  # A texture, not a flat image.
      assert frames.std() > 2


def _one(action=None, *, slot=0, shape="square", size=0.21, x=0.5, y=0.5, colour="red",
         target=None, res=RES, frames=8):
  events = (Event(action, slot, target),) if action else (Event("stay_still", 0),)
  obj = SceneObject(shape=shape, colour=colour, size="large", radius=size, x=x, y=y, events=events)
  return Scene(objects=(obj,), background=Background("plain", 60, 0), num_frames=frames,
               resolution=res)


def _mask(frames, bg=60):
  return np.abs(frames.astype(int) - bg).sum(-1) > 60


def _centroid(mask):
  ys, xs = np.nonzero(mask)
  return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("action,sign", [("move_left", (-1, 0)), ("move_right", (1, 0)),
                                         ("move_up", (0, -1)), ("move_down", (0, 1))])
@pytest.mark.parametrize("frames,slot", [(8, 0), (8, 1), (16, 1)])
def test_moves_shift_the_centroid_by_many_pixels(action, sign, frames, slot):
  start_pos = {"move_left": (0.75, 0.5), "move_right": (0.25, 0.5), "move_up": (0.5, 0.75),
               "move_down": (0.5, 0.25)}[action]
  scene = _one(action, slot=slot, shape="circle", size=0.12, x=start_pos[0], y=start_pos[1],
               frames=frames)
  video = render.render(scene)
  first, last = motion.slot_frames(frames, slot)
  shift = _centroid(_mask(video[last])) - _centroid(_mask(video[first]))
  along = shift @ np.array(sign)
  assert along >= 0.25 * RES  # >= 8 px at 32 px.
  assert abs(shift @ np.array(sign[::-1])) < 1.0  # Straight along its axis.
  # Nothing moves outside the action's half.
  other = (frames // 2, frames - 1) if slot == 0 else (0, frames // 2 - 1)
  assert (video[other[0]] == video[other[1]]).all()


def test_bounce_goes_up_and_comes_back():
  scene = _one("bounce", shape="circle", size=0.12, y=0.7, frames=16)
  video = render.render(scene)
  ys = np.array([_centroid(_mask(f))[1] for f in video[:8]])
  assert ys[0] - ys.min() >= 0.15 * RES
  assert abs(ys[7] - ys[0]) < 0.5


@pytest.mark.parametrize("action,lo,hi", [("grow", 1.8, 2.8), ("shrink", 0.2, 0.45)])
def test_grow_and_shrink_change_the_area(action, lo, hi):
  video = render.render(_one(action, shape="circle", size=0.15))
  ratio = _mask(video[3]).sum() / _mask(video[0]).sum()
  assert lo <= ratio <= hi


@pytest.mark.parametrize("shape", [s for s in vocab.SHAPES if vocab.can_spin(s)])
@pytest.mark.parametrize("size", sorted(vocab.SIZES.values()))
def test_spin_visibly_changes_the_silhouette(shape, size):
  video = render.render(_one("spin", shape=shape, size=size))
  start, end = _mask(video[0]), _mask(video[3])
  assert (start & end).sum() / (start | end).sum() < 0.85
  assert (start ^ end).sum() >= 8


def test_shapes_that_may_not_spin_look_the_same_rotated():
  for shape in ("circle", "ring"):
    a = _coverage(shape, 6.0, 0.0)
    b = _coverage(shape, 6.0, 0.7)
    assert np.abs(a - b).max() < 0.05


def test_appear_and_disappear_change_presence():
  appear = render.render(_one("appear", slot=1))
  assert _mask(appear[:4]).sum() == 0 and _mask(appear[-1]).sum() > 100
  disappear = render.render(_one("disappear", slot=0))
  assert _mask(disappear[0]).sum() > 100 and _mask(disappear[3:]).sum() == 0


def test_change_colour_shows_the_target_colour():
  video = render.render(_one("change_colour", colour="red", target="blue"))
  for t, colour in [(0, "red"), (3, "blue"), (7, "blue")]:
    pixels = video[t][_mask(video[t])]
    centre = video[t][RES // 2, RES // 2]
    assert np.abs(centre.astype(int) - vocab.COLOURS[colour]).max() <= 1, (t, colour)
    assert len(pixels) > 100


def test_stay_still_is_static_and_render_can_pick_frames():
  video = render.render(_one(None))
  assert all((f == video[0]).all() for f in video)
  scene = _one("move_left", x=0.7)
  assert (render.render(scene, [5, 2]) == render.render(scene)[[5, 2]]).all()
