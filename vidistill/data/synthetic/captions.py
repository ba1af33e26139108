"""Every text a clip comes with, from its scene: gold / short captions, alt-text, frame captions,
narrative and the structured event list.

- gold: all objects and actions in time order ("a small red circle moves left and a large blue
  square grows, then the circle spins"); objects listed left to right within a half, so the caption
  is a function of what is visible. Variants 1 and 2 say the same with other words (extra
  references for captioning metrics).
- short (Spoken Moments style): one object, one action, no attributes ("a circle is moving");
  `short_caption="first"`: the clip's first event, direction said ("a circle is moving left").
- alt-text (web style): static words only, often incomplete or partly wrong, never the motion.
- frame captions: what one frame shows ("a small red circle on the left and a large blue square at
  the top"): the image-text data of the image VLM.
- narrative (VidLN style): one sentence per object with its actions in order, plus timed
  utterances per event.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vidistill.data.synthetic import motion
from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.scene import Event, Scene, SceneObject

NUM_GOLD_VARIANTS = 3

_POSITIONS = (("at the top left", "at the top", "at the top right"),
              ("on the left", "in the middle", "on the right"),
              ("at the bottom left", "at the bottom", "at the bottom right"))
_ALT_BACKGROUND = {"plain": ("grey background", "dark background", "plain backdrop"),
                   "checker": ("checkered background", "checkerboard pattern", "grey tiles"),
                   "noise": ("grunge texture", "grey texture", "textured backdrop")}
_ALT_TEMPLATES = ("{things}", "{things} on {bg}", "{bg} with {things}", "{things} icon",
                  "{things} clipart", "abstract {things} background", "geometric {things} set",
                  "{things} vector illustration")
_ALT_GENERIC = ("abstract geometric shapes", "simple shapes for kids", "colorful shapes",
                "basic geometry", "shapes and colors")
_ALT_JUNK = ("hd", "4k", "stock footage", "royalty free", "free download", "wallpaper",
             "design element", "minimal", "clip", "template", "png", "1080p")


def article(word: str) -> str:
  return "an" if word[:1] in "aeiou" else "a"


def describe(obj: SceneObject) -> str:
  """"small red circle": the object's full description at the start of the clip."""
  return f"{obj.size} {obj.colour} {obj.shape}"


def phrase(event: Event, *, paraphrase: bool = False) -> str:
  """"moves left", "turns blue" (paraphrase: "slides to the left", "changes colour to blue")."""
  return vocab.action_phrase(event.action, event.target_colour, paraphrase=paraphrase)


def _join(items: Sequence[str]) -> str:
  items = list(items)
  return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def gold_caption(scene: Scene, variant: int = 0) -> str:
  """The detailed caption; variant 0 is canonical (unique across a test set), 1-2 paraphrase it."""
  paraphrase = variant == 1
  mentioned: set[int] = set()
  groups = []
  for slot in range(2):
    clauses = []
    for i, obj in enumerate(scene.objects):
      for event in obj.events:
        if event.slot != slot:
          continue
        if i in mentioned:
          subject = f"the {obj.colour} {obj.shape}" if variant else f"the {obj.shape}"
        else:
          subject = f"{article(obj.size)} {describe(obj)}"
          mentioned.add(i)
        clauses.append(f"{subject} {phrase(event, paraphrase=paraphrase)}")
    if clauses:
      groups.append(_join(clauses))
  if len(groups) == 1:
    return groups[0]
  if variant == 1:
    return f"{groups[0]}; after that, {groups[1]}"
  if variant == 2:
    return f"first {groups[0]}, and then {groups[1]}"
  return f"{groups[0]}, then {groups[1]}"


def gold_captions(scene: Scene, num: int = NUM_GOLD_VARIANTS) -> list[str]:
  """Canonical gold caption first, then distinct paraphrases (up to `num` in all)."""
  out: list[str] = []
  for variant in range(num):
    text = gold_caption(scene, variant)
    if text not in out:
      out.append(text)
  return out


def short_caption(scene: Scene, rng: np.random.Generator, kind: str = "any") -> str:
  """One object's action, preferring an action that is not staying still.

  kind "any": a random (object, action) pair, moves undirected ("a circle is moving"); "first":
  the first event in the gold caption's order, direction said ("a circle is moving left").
  """
  pairs = [(o, e) for o in scene.objects for e in o.events]
  moving = [p for p in pairs if p[1].action != "stay_still"] or pairs
  if kind == "first":
    obj, event = min(moving, key=lambda p: (p[1].slot, scene.objects.index(p[0])))
    return f"{article(obj.shape)} {obj.shape} {vocab.SHORT_PHRASE_DIRECTED[event.action]}"
  if kind != "any":
    raise ValueError(f"short caption kind {kind!r}: use 'any' or 'first'")
  obj, event = moving[rng.integers(len(moving))]
  return f"{article(obj.shape)} {obj.shape} {vocab.SHORT_PHRASE[event.action]}"


def alt_text(scene: Scene, rng: np.random.Generator, *, wrong_attribute_prob: float,
             drop_object_prob: float, junk_prob: float, colours: Sequence[str],
             shapes: Sequence[str]) -> str:
  """Web-style alt-text: static attributes only, some objects dropped, some words wrong.

  Never names an action, a direction or time (vocab.MOTION_WORDS): a model trained on it learns
  what is there, not what happens, which is the gap the paper's pseudo-captions close.
  """
  things = []
  for obj in scene.objects:
    if rng.random() < drop_object_prob:
      continue
    colour, shape = obj.colour, obj.shape
    if rng.random() < wrong_attribute_prob:
      colour = colours[rng.integers(len(colours))]
    if rng.random() < wrong_attribute_prob:
      shape = shapes[rng.integers(len(shapes))]
    things.append(shape if rng.random() < 0.25 else f"{colour} {shape}")
  if things:
    joiner = " and " if rng.random() < 0.5 else ", "
    bg_words = _ALT_BACKGROUND[scene.background.kind]
    template = _ALT_TEMPLATES[rng.integers(len(_ALT_TEMPLATES))]
    text = template.format(things=joiner.join(things), bg=bg_words[rng.integers(len(bg_words))])
  else:
    text = _ALT_GENERIC[rng.integers(len(_ALT_GENERIC))]
  while rng.random() < junk_prob and text.count(" ") < 16:
    text += " " + _ALT_JUNK[rng.integers(len(_ALT_JUNK))]
  return text.title() if rng.random() < 0.3 else text


def _size_word(radius: float, sizes: Sequence[tuple[str, float]]) -> str:
  # Nearest size class in log-ratio: a grown small object reads as large in a single frame.
  return min(sizes, key=lambda kv: abs(np.log(radius / kv[1])))[0]


def _position(x: float, y: float) -> str:
  col = min(2, max(0, int(x * 3)))
  row = min(2, max(0, int(y * 3)))
  return _POSITIONS[row][col]


def frame_captions(scene: Scene, sizes: Sequence[tuple[str, float]],
                   frames: Sequence[int] | None = None) -> list[str]:
  """One static caption per frame: visible objects left to right with size, colour, position."""
  tracks = [motion.object_track(o, scene.num_frames) for o in scene.objects]
  out = []
  for t in range(scene.num_frames) if frames is None else frames:
    seen = sorted((tr.x[t], i) for i, tr in enumerate(tracks) if tr.visible[t])
    parts = []
    for _, i in seen:
      obj, tr = scene.objects[i], tracks[i]
      size = _size_word(obj.radius * tr.scale[t], sizes)
      parts.append(f"{article(size)} {size} {tr.colour[t]} {obj.shape} "
                   f"{_position(tr.x[t], tr.y[t])}")
    if parts:
      out.append(_join(parts))
    else:
      out.append(f"an empty {_ALT_BACKGROUND[scene.background.kind][0]}")
  return out


def _object_sentence(obj: SceneObject) -> str:
  subject = f"The {describe(obj)}"
  events = list(obj.events)
  if len(events) == 2:
    return f"{subject} {phrase(events[0])}, and then it {phrase(events[1])}."
  (event,) = events
  if event.action == "stay_still":
    return f"{subject} stays still the whole time."
  if event.slot == 0:
    return f"{subject} {phrase(event)}."
  if event.action == "appear":
    return f"{subject} appears halfway through."
  return f"{subject} stays still at first, and then it {phrase(event)}."


def narrative(scene: Scene) -> list[str]:
  """One sentence per object (left to right), its actions in order: the VidLN actor narratives."""
  return [_object_sentence(o) for o in scene.objects]


def events(scene: Scene) -> list[dict[str, Any]]:
  """The structured event list, in time order (slot, then left to right)."""
  out = []
  for slot in range(2):
    start, end = motion.slot_frames(scene.num_frames, slot)
    for i, obj in enumerate(scene.objects):
      for event in obj.events:
        if event.slot == slot:
          out.append({"object": i, "shape": obj.shape, "colour": obj.colour, "size": obj.size,
                      "action": event.action, "target_colour": event.target_colour,
                      "slot": slot, "start_frame": start, "end_frame": end,
                      "text": f"the {describe(obj)} {phrase(event)}"})
  return out


def timed_utterances(scene: Scene, fps: float) -> list[dict[str, Any]]:
  """[{"utterance", "start_time", "end_time"}] per event, in seconds of the clip."""
  return [{"utterance": e["text"], "start_time": round(e["start_frame"] / fps, 3),
           "end_time": round((e["end_frame"] + 1) / fps, 3)} for e in events(scene)]


def all_texts(scene: Scene, rng: np.random.Generator, *, fps: float, alt: Mapping[str, float],
              sizes: Sequence[tuple[str, float]], colours: Sequence[str], shapes: Sequence[str],
              num_gold: int = NUM_GOLD_VARIANTS, short: str = "any") -> dict[str, Any]:
  """Every caption kind of a clip (the text fields of its truth record)."""
  sentences = narrative(scene)
  return {
      "gold_caption": gold_caption(scene),
      "gold_captions": gold_captions(scene, num_gold),
      "short_caption": short_caption(scene, rng, short),
      "alt_text": alt_text(scene, rng, wrong_attribute_prob=alt["wrong_attribute_prob"],
                           drop_object_prob=alt["drop_object_prob"], junk_prob=alt["junk_prob"],
                           colours=colours, shapes=shapes),
      "frame_captions": frame_captions(scene, sizes),
      "narrative": " ".join(sentences),
      "actor_narratives": [{"actor_name": describe(o), "caption": s}
                           for o, s in zip(scene.objects, sentences)],
      "timed_narrative": timed_utterances(scene, fps),
      "events": events(scene),
  }
