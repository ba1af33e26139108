"""One clip of one split: its id, its seed, its scene and its truth record (every text it has).

Seeds come from np.random.SeedSequence((seed, split, index, attempt)), so clips are generated in
any order, in parallel, and any clip can be regenerated alone. The test split is the exception that
needs its predecessors: its gold captions must be unique (retrieval needs one right answer) and a
share of its clips are distractors of earlier ones; `test_scenes` draws it sequentially (scenes
only, no pixels: fast) and the truth record keeps every scene for regeneration.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from vidistill.data.synthetic import captions
from vidistill.data.synthetic import config_check
from vidistill.data.synthetic import distractors
from vidistill.data.synthetic import questions
from vidistill.data.synthetic.scene import Scene, WorldSpec, sample_scene

SPLITS = config_check.SPLITS
_SPLIT_CODE = {name: i for i, name in enumerate(SPLITS)}
_MAX_ATTEMPTS = 1000  # Redraws of one test clip before its vocabularies are declared too small.


class SplitTooLargeError(RuntimeError):
  """The vocabularies cannot give that many distinct gold captions; the message says what to do."""


def clip_rngs(seed: int, split: str, index: int, attempt: int = 0
              ) -> tuple[np.random.Generator, np.random.Generator]:
  """(scene rng, text rng) of a clip: independent streams, so text changes never move pixels."""
  root = np.random.SeedSequence([seed, _SPLIT_CODE[split], index, attempt])
  scene_seq, text_seq = root.spawn(2)
  return np.random.default_rng(scene_seq), np.random.default_rng(text_seq)


def clip_id(config: Any, split: str, index: int) -> str:
  """Ids in the conventions of the layout each split is written in (see export.py).

  test / qa: MSR-VTT's "video<N>" (MSRVTT-QA names videos by that number; qa continues the
  numbering after test). labeled: VATEX's "<id>_<start:06d>_<end:06d>" (the window is the whole
  clip). Others: "<split>-<index:06d>".
  """
  if split == "test":
    return f"video{index}"
  if split == "qa":
    return f"video{config.splits.test + index}"
  if split == "labeled":
    return f"labeled-{index:06d}_000000_{math.ceil(config.num_frames / config.fps):06d}"
  if split == "image_text":
    return f"image-{index:06d}"
  return f"{split}-{index:06d}"


def test_scenes(config: Any) -> list[dict[str, Any]]:
  """The test split's scenes in order: [{"scene", "attempt", "distractor_of", "distractor_kind"}].

  A clip is, with probability config.distractor_fraction, a distractor of an earlier base clip
  (same objects and start, other motion or order); every gold caption (all variants) is unique.
  """
  spec = WorldSpec.from_config(config)
  used: set[str] = set()
  bases: list[int] = []
  out: list[dict[str, Any]] = []
  for index in range(config.splits.test):
    for attempt in range(_MAX_ATTEMPTS):
      rng, _ = clip_rngs(config.seed, "test", index, attempt)
      entry = {"attempt": attempt, "distractor_of": None, "distractor_kind": None}
      made = None
      if bases and rng.random() < config.distractor_fraction:
        base = bases[rng.integers(len(bases))]
        made = distractors.make_distractor(out[base]["scene"], rng, spec)
        if made is not None:
          entry.update(distractor_of=clip_id(config, "test", base), distractor_kind=made[1])
      scene = made[0] if made is not None else sample_scene(rng, spec)
      texts = captions.gold_captions(scene, config.gold_variants)
      if not used.intersection(texts):
        used.update(texts)
        if made is None:
          bases.append(index)
        out.append({"scene": scene, **entry})
        break
    else:
      raise SplitTooLargeError(
          f"config.splits.test={config.splits.test}: no unique gold caption for clip {index} "
          f"after {_MAX_ATTEMPTS} draws; use a smaller test split or larger vocabularies")
  return out


def clip_scene(config: Any, split: str, index: int) -> Scene:
  """The scene of a clip of an independently drawn split (every split but test)."""
  rng, _ = clip_rngs(config.seed, split, index)
  return sample_scene(rng, WorldSpec.from_config(config))


def truth_record(config: Any, split: str, index: int, scene: Scene, *, attempt: int = 0,
                 **extra: Any) -> dict[str, Any]:
  """Everything known about a clip: the line of truth/<split>.jsonl (JSON-ready)."""
  spec = WorldSpec.from_config(config)
  _, text_rng = clip_rngs(config.seed, split, index, attempt)
  record = {"id": clip_id(config, split, index), "split": split, "index": index,
            "attempt": attempt, "scene": scene.to_json(), **extra}
  if split == "image_text":
    frame = int(text_rng.integers(scene.num_frames))
    record.update(frame=frame, caption=captions.frame_captions(scene, spec.sizes, [frame])[0])
    return record
  record.update(captions.all_texts(
      scene, text_rng, fps=config.fps, alt=config.alt_text, sizes=spec.sizes,
      colours=spec.colours, shapes=spec.shapes, num_gold=config.gold_variants,
      short=config.get("short_caption", "any")))
  if split == "qa":
    qs = questions.make_questions(scene, text_rng, config.questions_per_clip,
                                  actions=spec.actions, colours=spec.colours, shapes=spec.shapes)
    record["questions"] = [q.to_json() for q in qs]
  return record


def split_records(config: Any, split: str, start: int, stop: int,
                  test_entries: list[dict[str, Any]] | None = None
                  ) -> Iterator[tuple[Scene, dict[str, Any]]]:
  """(scene, truth record) of clips [start, stop) of a split, in order.

  The test split takes its scenes from `test_entries` (test_scenes' output, or the scenes read back
  from a truth file); the other splits draw theirs from their seeds.
  """
  for index in range(start, stop):
    if split == "test":
      entry = test_entries[index]
      scene = entry["scene"]
      record = truth_record(config, split, index, scene, attempt=entry["attempt"],
                            distractor_of=entry["distractor_of"],
                            distractor_kind=entry["distractor_kind"])
    else:
      scene = clip_scene(config, split, index)
      record = truth_record(config, split, index, scene)
    yield scene, record
