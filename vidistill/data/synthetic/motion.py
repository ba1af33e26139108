"""Per-frame state of an object (position, scale, angle, colour, visibility) from its actions.

Pure functions of a `scene.SceneObject`; the renderer draws these states, the frame captions
describe them, and scene sampling uses them to keep objects inside the frame and apart.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from vidistill.data.synthetic import vocab

if TYPE_CHECKING:  # scene.py imports this module; the types are only for annotations here.
  from vidistill.data.synthetic.scene import SceneObject


@dataclasses.dataclass(frozen=True)
class Track:
  """States of one object over T frames; positions and extents are fractions of the frame."""
  x: np.ndarray          # [T] float64 centre.
  y: np.ndarray          # [T] float64 centre (y grows downwards).
  scale: np.ndarray      # [T] float64 radius / start radius.
  angle: np.ndarray      # [T] float64 rotation in radians.
  visible: np.ndarray    # [T] bool.
  colour: tuple[str, ...]  # [T] colour word per frame.
  extent: np.ndarray     # [T] float64 half-side of a box that holds the object at any rotation.


def slot_frames(num_frames: int, slot: int) -> tuple[int, int]:
  """First and last frame (inclusive) of a slot: the action runs from its start state there to its
  end state here, so a move has moved its full distance by the slot's last frame."""
  half = num_frames // 2
  return (0, half - 1) if slot == 0 else (half, num_frames - 1)


def progress(num_frames: int, slot: int) -> np.ndarray:
  """[T] float64 progress of an action in `slot`: < 0 before the slot, 0..1 in it, > 1 after."""
  start, end = slot_frames(num_frames, slot)
  return (np.arange(num_frames, dtype=np.float64) - start) / (end - start)


def object_track(obj: "SceneObject", num_frames: int) -> Track:
  """The object's state in every frame, applying its events in slot order."""
  t = num_frames
  x = np.full(t, obj.x, np.float64)
  y = np.full(t, obj.y, np.float64)
  scale = np.ones(t, np.float64)
  angle = np.zeros(t, np.float64)
  visible = np.ones(t, bool)
  colours = [obj.colour] * t
  spins = False
  for event in obj.events:
    raw = progress(num_frames, event.slot)
    u = np.clip(raw, 0.0, 1.0)
    action = event.action
    if action in vocab.MOVES:
      dx, dy = vocab.MOVES[action]
      x = x + dx * vocab.MOVE_DISTANCE * u
      y = y + dy * vocab.MOVE_DISTANCE * u
    elif action == "bounce":
      y = y - vocab.BOUNCE_HEIGHT * np.sin(math.pi * u)
    elif action in ("grow", "shrink"):
      final = vocab.GROW_SCALE if action == "grow" else vocab.SHRINK_SCALE
      scale = scale * (1.0 + (final - 1.0) * u)
    elif action == "spin":
      # Half the symmetry angle: the end pose differs most from the start (square -> diamond,
      # triangle up -> down, bar horizontal -> vertical).
      angle = angle + 0.5 * vocab.SYMMETRY_ANGLE[obj.shape] * u
      spins = True
    elif action == "change_colour":
      colours = [event.target_colour if r >= 0.5 else c for r, c in zip(raw, colours)]
    elif action == "appear":
      visible = visible & (raw >= 0.5)
    elif action == "disappear":
      visible = visible & (raw < 0.5)
    elif action != "stay_still":
      raise ValueError(f"unknown action {action!r}; expected one of {vocab.ACTIONS}")
  # A rotating square reaches sqrt(2) r along the axes; unrotated shapes fit in [-r, r]^2.
  reach = math.sqrt(2.0) if spins else 1.0
  extent = obj.radius * scale * reach
  return Track(x=x, y=y, scale=scale, angle=angle, visible=visible, colour=tuple(colours),
               extent=extent)
