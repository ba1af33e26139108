"""Zero-shot video classification with a dual encoder: class names through prompt templates.

The CLIP recipe (metrics/classification.py): every class name goes through every template
("a video of {}."), the text tower embeds the prompts, the normalised prompt embeddings of a class
are averaged into its class embedding, and each video is classified by cosine similarity (top-1 /
top-5 accuracy). The classes are those of a class-name file (one a line, e.g. Kinetics' label
list) or, by default, the distinct labels of the annotation file in sorted order; underscores
count as spaces when labels are matched to class names ("air_drumming" = "air drumming").
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterator

import numpy as np

from vidistill.config_args import ConfigError
from vidistill.data.records import VideoRecord
from vidistill.eval.evaluators import base, common, inputs
from vidistill.eval.metrics import classification
from vidistill.eval.metrics import similarity


@dataclasses.dataclass(frozen=True, kw_only=True)
class ZeroShotOptions(common.DataOptions):
  class_names: str = ""                 # File of class names, one a line ("" = the labels found).
  templates: tuple = classification.DEFAULT_TEMPLATES  # Prompt templates, "{}" = class name.
  ks: tuple = (1, 5)                    # Top-k accuracies reported.
  ties: str = "pessimistic"             # A label tied with other classes ranks behind them.


def _key(name: str) -> str:
  return " ".join(name.replace("_", " ").split()).lower()


class ZeroShotEvaluator(base.Evaluator):
  """Yields top1, top5 (one per k), num_videos, num_classes (and num_failed after skips)."""
  kind = "zero_shot"
  options_class = ZeroShotOptions
  model_protocol = common.VideoTextEmbedder

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    o = self.options
    try:
      classification.expand_templates(["x"], o.templates)
    except classification.ClassificationError as e:
      raise ConfigError(f"{self.where}.templates: {e}") from None
    if not o.ks or not all(isinstance(k, int) and k >= 1 for k in o.ks):
      raise ConfigError(f"{self.where}.ks={o.ks!r} must be positive integers, e.g. (1, 5)")
    self.check_choice("ties", similarity.TIE_POLICIES)
    if o.class_names and not os.path.isfile(o.class_names):
      raise common.EvalDataError(f"{self.where}.class_names: no such file {o.class_names!r} "
                                 "(one class name a line; '' takes the annotation file's labels)")

  def _class_list(self, records: list[VideoRecord]) -> list[str]:
    o = self.options
    if not o.class_names:
      return sorted({r.label for r in records}, key=_key)
    with open(o.class_names, encoding="utf-8") as f:
      names = [line.strip() for line in f if line.strip()]
    seen: dict[str, int] = {}
    for line_no, name in enumerate(names, start=1):
      if _key(name) in seen:
        raise common.EvalDataError(f"{o.class_names}:{line_no}: class {name!r} repeats line "
                                   f"{seen[_key(name)]}")
      seen[_key(name)] = line_no
    return names

  def run(self, model: common.VideoTextEmbedder) -> Iterator[tuple[str, float]]:
    o = self.options
    records = self.load(model, "label", "Kinetics test files have none: use a labelled split")
    names = self._class_list(records)
    index = {_key(n): i for i, n in enumerate(names)}
    unknown = sorted({r.label for r in records if _key(r.label) not in index})
    if unknown:
      raise common.EvalDataError(f"{self.where}: labels {unknown[:5]} ({len(unknown)} in all) "
                                 f"are not in the class names of {o.class_names!r}")
    too_big = [k for k in o.ks if k > len(names)]
    if too_big:
      raise ConfigError(f"{self.where}.ks={o.ks!r}: top-{too_big[0]} needs at least "
                        f"{too_big[0]} classes, there are {len(names)}")

    prompts = classification.expand_templates(names, o.templates)  # [C][P]
    flat = inputs.embed_texts(model, [p for per_class in prompts for p in per_class],
                              settings=self.settings, batch_size=self.batch_size,
                              label=self.name)
    class_embeddings = classification.prompt_ensemble(
        flat.reshape(len(names), len(o.templates), -1))
    videos, kept = inputs.embed_videos(model, records, options=o, settings=self.settings,
                                       batch_size=self.batch_size, label=self.name)
    labels = np.array([index[_key(records[i].label)] for i in kept])
    yield from classification.zero_shot_accuracy(videos, class_embeddings, labels, ks=o.ks,
                                                 ties=o.ties).items()
    yield "num_videos", len(kept)
    yield "num_classes", len(names)
    if len(kept) < len(records):
      yield "num_failed", len(records) - len(kept)
