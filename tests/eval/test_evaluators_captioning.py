"""Tests for vidistill/eval/evaluators/captioning.py: real clips, MSR-VTT / VATEX layouts, fake VLM.

Scores are checked against pycocoevalcap (the reference implementation) on the predictions the
test expects each clip to get, so a prediction scored against another clip's references fails.
"""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluator_fakes import SETTINGS, world  # pylint: disable=unused-import  (fixture)

from vidistill.config_args import ConfigError
from vidistill.eval.evaluators import captioning
from vidistill.eval.evaluators import common


def _msrvtt(world):
  paths, root = world
  return dict(reader="msrvtt", annotations=paths["msrvtt"],
              video_root=os.path.join(root, "msrvtt", "videos", "all"))


def _evaluator(entry, output_dir=None, **extra):
  options = common.parse_options(captioning.CaptioningOptions, {**entry, **extra}, "e")
  return captioning.CaptioningEvaluator("e", options, SETTINGS, output_dir)


def _coco_reference(predictions, references):
  """BLEU-1..4, ROUGE-L, CIDEr-D x100 by pycocoevalcap (inputs are already lower-case words)."""
  from pycocoevalcap.bleu.bleu import Bleu  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.cider.cider import Cider  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.rouge.rouge import Rouge  # pylint: disable=g-import-not-at-top
  gts = {i: refs for i, refs in enumerate(references)}
  res = {i: [p] for i, p in enumerate(predictions)}
  bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
  rouge, _ = Rouge().compute_score(gts, res)
  cider, _ = Cider().compute_score(gts, res)
  out = {f"BLEU-{n + 1}": 100 * b for n, b in enumerate(bleu)}
  out.update({"ROUGE-L": 100 * rouge, "CIDEr-D": 100 * cider})
  return out


@pytest.mark.parametrize("shift", [0, 1])
def test_scores_match_pycocoevalcap_on_the_expected_predictions(world, shift, tmp_path):
  model = fakes.FakeVLM(shift=shift)
  metrics = dict(_evaluator(_msrvtt(world), str(tmp_path)).run(model))
  expected = [fakes.captions_of(fakes.shifted(c, shift))[0] for c in fakes.COLOURS]
  references = [fakes.captions_of(c) for c in fakes.COLOURS]
  want = _coco_reference(expected, references)
  assert metrics["num_videos"] == 8
  for key, value in want.items():
    assert metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
  if shift == 0:  # Each prediction is one of its references.
    assert metrics["BLEU-4"] == pytest.approx(100.0) and metrics["ROUGE-L"] == pytest.approx(100)
  else:  # Right but for the colour word, which costs every n-gram that holds it.
    assert 50 < metrics["BLEU-4"] < 90
  rows = [json.loads(line) for line in open(tmp_path / "predictions.jsonl", encoding="utf-8")]
  assert [r["video_id"] for r in rows] == [f"video{i}" for i in range(8)]
  assert [r["prediction"] for r in rows] == expected
  assert [r["references"] for r in rows] == references


def test_the_prompt_reaches_the_model_in_padded_batches(world):
  model = fakes.FakeVLM()
  dict(_evaluator(_msrvtt(world), prompt="caption en: please").run(model))
  assert [(kind, n) for kind, n, _ in model.calls] == [("generate", 3)] * 3
  assert {p for _, _, prompts in model.calls for p in prompts} == {"caption en: please"}


def test_vatex_layout_and_max_examples(world):
  paths, root = world
  entry = dict(reader="vatex", annotations=paths["vatex"],
               video_root=os.path.join(root, "vatex", "videos"))
  metrics = dict(_evaluator(entry, max_examples=5).run(fakes.FakeVLM()))
  assert metrics["num_videos"] == 5 and metrics["BLEU-4"] == pytest.approx(100.0)


def test_model_output_and_kind_are_checked(world):
  class Mute(fakes.FakeVLM):
    def generate(self, frames, prompts):
      return ["a caption"]

  with pytest.raises(common.EvalDataError, match="returned 1 outputs .* for a batch of 3"):
    dict(_evaluator(_msrvtt(world)).run(Mute()))
  with pytest.raises(ConfigError, match="needs a VideoTextGenerator"):
    dict(_evaluator(_msrvtt(world)).run(fakes.FakeEmbedder()))
