"""Tests for vidistill/eval/evaluators/qa.py: NExT-QA (multiple choice), NExT-OE, MSRVTT-QA layouts
on real clips, with a fake VLM that answers colour questions right, wrong (shift) or undecided."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluator_fakes import SETTINGS, world  # pylint: disable=unused-import  (fixture)

from vidistill.config_args import ConfigError
from vidistill.data import video_io
from vidistill.eval.evaluators import common
from vidistill.eval.evaluators import qa


def _entry(world, name):
  paths, root = world
  if name == "msrvtt_qa":
    return dict(reader="msrvtt_qa", annotations=paths["msrvtt_qa"],
                video_root=os.path.join(root, "msrvtt", "videos", "all"))
  return dict(reader="nextqa", annotations=paths[name], video_root=os.path.join(root, "NExTVideo"))


def _run(entry, model, output_dir=None, **extra):
  options = common.parse_options(qa.QAOptions, {**entry, **extra}, "e")
  return dict(qa.QAEvaluator("e", options, SETTINGS, output_dir).run(model))


MC = dict(mode="multiple_choice", type_key="type", type_groups="nextqa")


def test_multiple_choice_right_wrong_and_per_type(world, tmp_path):
  entry = _entry(world, "nextqa")
  right = _run(entry, fakes.FakeVLM(), str(tmp_path), **MC)
  assert right == {"accuracy": 100.0, "accuracy/DC": 100.0, "accuracy/TN": 100.0,
                   "accuracy/descriptive": 100.0, "accuracy/temporal": 100.0,
                   "num_questions": 16}
  # Seeing the next colour, the model picks a wrong candidate, or none when the next colour is
  # not among the candidates (all score -5: a tie at the top, which counts as wrong).
  assert _run(entry, fakes.FakeVLM(shift=1), **MC)["accuracy"] == 0.0
  rows = [json.loads(line) for line in open(tmp_path / "predictions.jsonl", encoding="utf-8")]
  assert len(rows) == 16 and all(r["prediction"] == r["answer"] for r in rows)
  assert rows[0]["id"] == "1000_0" and len(rows[0]["scores"]) == 5


def test_tied_scores_follow_the_tie_policy(world):
  entry = _entry(world, "nextqa")
  assert _run(entry, fakes.FakeVLM(tie=True), **MC)["accuracy"] == 0.0
  first = _run(entry, fakes.FakeVLM(tie=True), ties="first", **MC)
  answers = [row[5] for row in fakes.qa_rows()]  # The CSV's answer column.
  assert first["accuracy"] == pytest.approx(100.0 * np.mean(np.array(answers) == 0))


def test_open_ended_msrvtt_qa_with_category_names(world):
  entry = _entry(world, "msrvtt_qa")
  opts = dict(mode="open_ended", type_key="category_id", type_groups="msrvtt_qa")
  assert _run(entry, fakes.FakeVLM(), **opts) == {
      "accuracy": 100.0, "accuracy/0": 100.0, "accuracy/1": 100.0, "accuracy/what": 100.0,
      "accuracy/who": 100.0, "num_questions": 16}
  assert _run(entry, fakes.FakeVLM(shift=2), **opts)["accuracy"] == 0.0


def test_open_ended_accepts_nextoe_additional_answers(world):
  # Answers are "<colour> colour"; the fake says "The <colour>.", accepted through
  # additional_ref_answer after normalisation.
  assert _run(_entry(world, "nextoe"), fakes.FakeVLM())["accuracy"] == 100.0


def test_prompt_template_and_one_decode_per_video(world, monkeypatch):
  decoded = []
  real = video_io.read_video
  monkeypatch.setattr(video_io, "read_video",
                      lambda path, *a, **k: decoded.append(path) or real(path, *a, **k))
  model = fakes.FakeVLM()
  _run(_entry(world, "nextqa"), model, prompt="Q: {question} A:", **MC)
  assert len(decoded) == 8  # 16 questions, 8 videos.
  prompts = [p for _, _, batch in model.calls for p in batch]
  assert prompts[0] == "Q: what colour is the video (0)? A:" and len(prompts) == 18


def test_mismatched_mode_and_options_are_explained(world):
  with pytest.raises(common.EvalDataError, match=r"record '0' has 0 candidates.*open_ended"):
    _run(_entry(world, "msrvtt_qa"), fakes.FakeVLM(), mode="multiple_choice")
  with pytest.raises(ConfigError, match=r"e.prompt='answer:' must contain '\{question\}'"):
    _run(_entry(world, "nextqa"), fakes.FakeVLM(), prompt="answer:")
  with pytest.raises(ConfigError, match="e.mode='choice'"):
    _run(_entry(world, "nextqa"), fakes.FakeVLM(), mode="choice")
  with pytest.raises(ConfigError, match="type_groups='nextqa' needs type_key"):
    _run(_entry(world, "nextqa"), fakes.FakeVLM(), type_groups="nextqa")
  with pytest.raises(common.EvalDataError, match=r"no 'kind' field \(type_key\)"):
    _run(_entry(world, "nextqa"), fakes.FakeVLM(), type_key="kind")


def test_score_shape_is_checked(world):
  class Short(fakes.FakeVLM):
    def score(self, frames, prompts, candidates):
      return super().score(frames, prompts, candidates)[:, :4]

  with pytest.raises(common.EvalDataError, match=r"scores of shape \(3, 4\); expected \(3, 5\)"):
    _run(_entry(world, "nextqa"), Short(), **MC)
