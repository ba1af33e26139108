"""Scenes of the synthetic world: what is in a clip and what each object does, and their sampling.

A clip is split into two halves ("slots"). Every object does one or two actions; an action fills
one slot (first half: slot 0, second half: slot 1), so "a red circle moves left, then a blue square
grows" means the circle acts in slot 0 and the square in slot 1. Slot 0 is never empty, so a caption
that starts with an event always starts at the beginning of the clip.

A `Scene` is plain data (JSON in the truth files): rendering, captions and questions are pure
functions of it, so any clip can be regenerated alone from its truth record.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from vidistill.data.synthetic import motion
from vidistill.data.synthetic import vocab

NUM_SLOTS = 2
_POSITION_TRIES = 40    # Start positions tried for one set of actions before drawing new actions.
_SCENE_TRIES = 2000     # Whole scenes tried before the spec is declared infeasible.
_MARGIN_PX = 1.5        # Background kept between two objects, and between an object and the edge.


class InfeasibleSceneError(RuntimeError):
  """The spec's sizes/motions leave no room for the objects; the message says which spec."""


@dataclasses.dataclass(frozen=True)
class Event:
  action: str                        # One of vocab.ACTIONS.
  slot: int                          # 0: first half of the clip, 1: second half.
  target_colour: str | None = None   # change_colour only: the colour it turns.


@dataclasses.dataclass(frozen=True)
class SceneObject:
  shape: str
  colour: str                   # Colour at the start (references in captions use it).
  size: str                     # Size word at the start ("small"/"large").
  radius: float                 # Radius at the start, fraction of the frame width.
  x: float                      # Centre at the start, fraction of the frame (0 = left edge).
  y: float                      # (0 = top edge.)
  events: tuple[Event, ...]     # Ordered by slot; one event per slot at most.

  def reference(self) -> str:
    """"the red circle": unique in its scene (shapes and colours are never repeated in a scene)."""
    return f"the {self.colour} {self.shape}"


@dataclasses.dataclass(frozen=True)
class Background:
  kind: str    # One of vocab.BACKGROUNDS.
  level: int   # Base grey level.
  seed: int    # Texture seed (checker phase, noise values).


@dataclasses.dataclass(frozen=True)
class Scene:
  objects: tuple[SceneObject, ...]   # Sorted left to right by start position (caption order).
  background: Background
  num_frames: int
  resolution: int

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> "Scene":
    objects = tuple(
        SceneObject(**{**o, "events": tuple(Event(**e) for e in o["events"])})
        for o in data["objects"])
    return cls(objects=objects, background=Background(**data["background"]),
               num_frames=int(data["num_frames"]), resolution=int(data["resolution"]))


@dataclasses.dataclass(frozen=True)
class WorldSpec:
  """What scenes may contain: the validated subset of a synthetic-world config."""
  resolution: int
  num_frames: int
  shapes: tuple[str, ...]
  colours: tuple[str, ...]
  sizes: tuple[tuple[str, float], ...]    # (word, radius as a fraction of the frame), ascending.
  actions: tuple[str, ...]
  backgrounds: tuple[str, ...]
  min_objects: int
  max_objects: int
  two_action_prob: float

  @classmethod
  def from_config(cls, config: Any) -> "WorldSpec":
    sizes = tuple(sorted(dict(config.sizes).items(), key=lambda kv: kv[1]))
    return cls(resolution=int(config.resolution), num_frames=int(config.num_frames),
               shapes=tuple(config.shapes), colours=tuple(config.colours), sizes=sizes,
               actions=tuple(config.actions), backgrounds=tuple(config.backgrounds),
               min_objects=int(config.min_objects), max_objects=int(config.max_objects),
               two_action_prob=float(config.two_action_prob))


def sample_scene(rng: np.random.Generator, spec: WorldSpec) -> Scene:
  """Draws objects, their actions and non-overlapping start positions.

  Objects never share a shape or a colour, so "the circle" / "the red object" name one object.
  Positions keep every object inside the frame and apart from the others in every frame.
  """
  for _ in range(_SCENE_TRIES):
    num = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    shapes = rng.choice(len(spec.shapes), size=num, replace=False)
    colours = rng.choice(len(spec.colours), size=num, replace=False)
    sizes = rng.integers(0, len(spec.sizes), size=num)
    used = {spec.colours[c] for c in colours}
    objects = []
    for i in range(num):
      size_word, radius = spec.sizes[sizes[i]]
      objects.append(SceneObject(
          shape=spec.shapes[shapes[i]], colour=spec.colours[colours[i]], size=size_word,
          radius=float(radius), x=0.5, y=0.5,
          events=sample_events(rng, spec, spec.shapes[shapes[i]], used)))
    if not any(e.slot == 0 for o in objects for e in o.events):
      continue
    placed = place_objects(rng, objects, spec.num_frames, spec.resolution)
    if placed is not None:
      return Scene(objects=placed, background=sample_background(rng, spec),
                   num_frames=spec.num_frames, resolution=spec.resolution)
  raise InfeasibleSceneError(
      f"no scene fits after {_SCENE_TRIES} tries with sizes {dict(spec.sizes)} and up to "
      f"{spec.max_objects} objects at {spec.resolution} px: use smaller sizes or fewer objects")


def sample_events(rng: np.random.Generator, spec: WorldSpec, shape: str,
                  scene_colours: set[str]) -> tuple[Event, ...]:
  """One or two actions in order. "appear" only opens and "disappear" only closes a sequence."""
  allowed = [a for a in spec.actions if a != "spin" or vocab.can_spin(shape)]
  free_colours = [c for c in spec.colours if c not in scene_colours]
  if not free_colours:  # A new colour must not collide with another object's reference colour.
    allowed = [a for a in allowed if a != "change_colour"]
  two = len(allowed) > 1 and rng.random() < spec.two_action_prob
  if not two:
    action = allowed[rng.integers(len(allowed))]
    actions = [action]
    slots = [int(rng.integers(NUM_SLOTS))]
  else:
    firsts = [a for a in allowed if a != "disappear"]
    first = firsts[rng.integers(len(firsts))]
    seconds = [a for a in allowed if a not in (first, "appear")
               and not (first == "appear" and a == "disappear")]
    if not seconds:
      actions, slots = [first], [0]
    else:
      actions, slots = [first, seconds[rng.integers(len(seconds))]], [0, 1]
  events = []
  for action, slot in zip(actions, slots):
    target = None
    if action == "change_colour":
      target = free_colours[rng.integers(len(free_colours))]
    events.append(Event(action=action, slot=slot, target_colour=target))
  return tuple(events)


def place_objects(rng: np.random.Generator, objects: Sequence[SceneObject], num_frames: int,
                  resolution: int) -> tuple[SceneObject, ...] | None:
  """Start positions keeping objects in frame and apart in every frame; None if none was found.

  Returns the objects sorted left to right (the order captions list them in).
  """
  gap = _MARGIN_PX / resolution
  offsets = []
  ranges = []
  for obj in objects:
    track = motion.object_track(dataclasses.replace(obj, x=0.0, y=0.0), num_frames)
    ext = track.extent + gap
    lo_x, hi_x = np.max(ext - track.x), np.min(1.0 - ext - track.x)
    lo_y, hi_y = np.max(ext - track.y), np.min(1.0 - ext - track.y)
    if lo_x > hi_x or lo_y > hi_y:
      return None
    offsets.append(track)
    ranges.append((lo_x, hi_x, lo_y, hi_y))
  # All candidate start positions at once: [tries, objects] per axis.
  lo_x, hi_x, lo_y, hi_y = (np.asarray(v)[None, :] for v in zip(*ranges))
  xs = lo_x + (hi_x - lo_x) * rng.random((_POSITION_TRIES, len(objects)))
  ys = lo_y + (hi_y - lo_y) * rng.random((_POSITION_TRIES, len(objects)))
  ok = _apart(offsets, xs, ys, gap)
  if not ok.any():
    return None
  k = int(np.argmax(ok))
  placed = [dataclasses.replace(o, x=round(float(x), 4), y=round(float(y), 4))
            for o, x, y in zip(objects, xs[k], ys[k])]
  return tuple(sorted(placed, key=lambda o: o.x))


def keep_apart(objects: Sequence[SceneObject], num_frames: int, resolution: int) -> bool:
  """Whether objects at their own start positions stay in frame and apart in every frame."""
  gap = _MARGIN_PX / resolution
  tracks = [motion.object_track(o, num_frames) for o in objects]
  for t in tracks:
    ext = t.extent + gap
    if np.any(t.x - ext < 0) or np.any(t.x + ext > 1) or np.any(t.y - ext < 0) or np.any(
        t.y + ext > 1):
      return False
  zeros = np.zeros((1, len(tracks)))
  return bool(_apart(tracks, zeros, zeros, gap)[0])


def _apart(tracks: Sequence[motion.Track], xs: np.ndarray, ys: np.ndarray,
           gap: float) -> np.ndarray:
  """[K] bool: for each of K candidate start offsets ([K, N] xs, ys), whether all pairs of the N
  objects' boxes (half-side `extent`) are separated along x or y in every frame."""
  ok = np.ones(xs.shape[0], bool)
  for i in range(len(tracks)):
    for j in range(i + 1, len(tracks)):
      a, b = tracks[i], tracks[j]
      dx = np.abs((a.x[None] + xs[:, i:i + 1]) - (b.x[None] + xs[:, j:j + 1]))
      dy = np.abs((a.y[None] + ys[:, i:i + 1]) - (b.y[None] + ys[:, j:j + 1]))
      need = (a.extent + b.extent + gap)[None]
      ok &= np.all((dx >= need) | (dy >= need), axis=1)
  return ok


def sample_background(rng: np.random.Generator, spec: WorldSpec) -> Background:
  low, high = vocab.BACKGROUND_GREY_RANGE
  margin = 16  # Texture amplitude: textured pixels stay inside the grey range.
  kind = spec.backgrounds[rng.integers(len(spec.backgrounds))]
  return Background(kind=kind, level=int(rng.integers(low + margin, high - margin + 1)),
                    seed=int(rng.integers(2**31 - 1)))
