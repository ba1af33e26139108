"""Distractor clips for the test sets: the same objects, background and start positions, but
another action or the same actions in another order.

Retrieval among such clips has one right answer only for a model that sees motion and order: their
frames at t=0 are identical, and so is every static word of their captions.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vidistill.data.synthetic import captions
from vidistill.data.synthetic import scene as scene_lib
from vidistill.data.synthetic.scene import Event, Scene, SceneObject

KINDS = ("swap_order", "change_action")


def _valid_sequence(events: Sequence[Event]) -> bool:
  actions = [e.action for e in sorted(events, key=lambda e: e.slot)]
  if len(actions) == 2:
    if "appear" == actions[1] or "disappear" == actions[0] or actions[0] == actions[1]:
      return False
    if actions == ["appear", "disappear"]:
      return False
  return True


def _swaps(scene: Scene) -> list[tuple[SceneObject, ...]]:
  """Objects lists with the order of events changed: within one object, or across two objects."""
  out = []
  objs = list(scene.objects)
  for i, obj in enumerate(objs):
    if len(obj.events) == 2:
      swapped = tuple(dataclasses.replace(e, slot=1 - e.slot) for e in obj.events)
      swapped = tuple(sorted(swapped, key=lambda e: e.slot))
      if _valid_sequence(swapped):
        out.append(tuple(objs[:i] + [dataclasses.replace(obj, events=swapped)] + objs[i + 1:]))
  singles = [i for i, o in enumerate(objs) if len(o.events) == 1]
  for a in singles:
    for b in singles:
      if a < b and objs[a].events[0].slot != objs[b].events[0].slot:
        new = list(objs)
        for k in (a, b):
          e = objs[k].events[0]
          new[k] = dataclasses.replace(objs[k], events=(dataclasses.replace(e, slot=1 - e.slot),))
        out.append(tuple(new))
  return out


def _changes(scene: Scene, rng: np.random.Generator, spec: scene_lib.WorldSpec
             ) -> list[tuple[SceneObject, ...]]:
  """Objects lists with one event's action replaced by another allowed action."""
  out = []
  objs = list(scene.objects)
  used = {o.colour for o in objs}
  free = [c for c in spec.colours if c not in used]
  for i, obj in enumerate(objs):
    for k, event in enumerate(obj.events):
      for action in spec.actions:
        if action == event.action or (action == "spin" and not scene_lib.vocab.can_spin(obj.shape)):
          continue
        if action == "change_colour" and not free:
          continue
        target = free[rng.integers(len(free))] if action == "change_colour" else None
        events = list(obj.events)
        events[k] = Event(action=action, slot=event.slot, target_colour=target)
        if _valid_sequence(events):
          out.append(tuple(objs[:i] + [dataclasses.replace(obj, events=tuple(events))]
                           + objs[i + 1:]))
  return out


def make_distractor(base: Scene, rng: np.random.Generator, spec: scene_lib.WorldSpec
                    ) -> tuple[Scene, str] | None:
  """A scene differing from `base` only in motion or order, and its kind; None if none fits.

  Start positions are kept when the new motions still fit the frame without overlaps (then frame
  0 is identical); otherwise the same objects are placed anew.
  """
  kinds = [KINDS[i] for i in rng.permutation(len(KINDS))]
  base_caption = captions.gold_caption(base)
  for kind in kinds:
    options = _swaps(base) if kind == "swap_order" else _changes(base, rng, spec)
    for j in rng.permutation(len(options)):
      objects = options[j]
      if not any(e.slot == 0 for o in objects for e in o.events):
        continue
      if not scene_lib.keep_apart(objects, base.num_frames, base.resolution):
        placed = scene_lib.place_objects(rng, objects, base.num_frames, base.resolution)
        if placed is None:
          continue
        objects = placed
      candidate = dataclasses.replace(base, objects=tuple(objects))
      if captions.gold_caption(candidate) != base_caption:
        return candidate, kind
  return None
