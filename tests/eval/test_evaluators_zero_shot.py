"""Tests for vidistill/eval/evaluators/zero_shot.py on Kinetics-layout clips (<split>/<label>/...).

The fake dual encoder embeds "a video of red things." near the red clips, so top-1 is 100; seeing
each clip as another colour, top-k must match a naive CLIP-recipe computation written here.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluator_fakes import world  # pylint: disable=unused-import  (fixture)

from vidistill.config_args import ConfigError
from vidistill.eval.evaluators import common
from vidistill.eval.evaluators import zero_shot

SETTINGS = common.Settings(num_frames=4, resolution=32, batch_size=4, num_workers=2, buffer=4)
TEMPLATES = ("a video of {}.", "{}", "a clip showing {}")


def _entry(world, **extra):
  paths, root = world
  return dict(reader="kinetics", annotations=paths["kinetics"],
              video_root=os.path.join(root, "kinetics", "videos"),
              **{"templates": TEMPLATES, **extra})


def _run(entry, model, **extra):
  options = common.parse_options(zero_shot.ZeroShotOptions, {**entry, **extra}, "e")
  return dict(zero_shot.ZeroShotEvaluator("e", options, SETTINGS).run(model))


def _naive_topk(model, class_names, ks):
  """The CLIP recipe by hand: mean of unit prompt vectors, renormalised; rank by cosine, ties
  pessimistic."""
  def unit(v):
    return v / np.linalg.norm(v)
  classes = [unit(np.mean([unit(model.text_vector(t.replace("{}", n.replace("_", " "))))
                           for t in TEMPLATES], axis=0)) for n in class_names]
  hits = {k: 0 for k in ks}
  for colour in fakes.COLOURS:
    video = unit(model.video_vector(colour))
    scores = [float(video @ c) for c in classes]
    truth = class_names.index(f"{colour}_things")
    rank = sum(s >= scores[truth] for s in scores)
    for k in ks:
      hits[k] += rank <= k
  return {f"top{k}": 100.0 * hits[k] / len(fakes.COLOURS) for k in ks}


def test_right_model_and_shifted_model_against_a_naive_reference(world):
  model = fakes.FakeEmbedder()
  assert _run(_entry(world), model) == {"top1": 100.0, "top5": 100.0, "num_videos": 8,
                                        "num_classes": 8}
  # 8 classes x 3 templates = 24 prompts in text batches of 4.
  assert sum(len(b) for b in model.text_batches) == 24
  assert model.text_batches[0][:3] == ["a video of blue things.", "blue things",
                                      "a clip showing blue things"]  # Sorted class names.
  shifted = fakes.FakeEmbedder(shift=1)
  got = _run(_entry(world, ks=(1, 2, 5)), shifted)
  names = sorted(f"{c}_things" for c in fakes.COLOURS)
  want = _naive_topk(shifted, names, (1, 2, 5))
  assert got["top1"] == 0.0
  for key, value in want.items():
    assert got[key] == pytest.approx(value), key


def test_class_names_file_adds_classes_and_matches_spaces(world, tmp_path):
  names = tmp_path / "classes.txt"
  # Spaces where the labels have underscores, plus a class no clip has.
  names.write_text("\n".join([f"{c} things" for c in fakes.COLOURS] + ["black things"]) + "\n")
  got = _run(_entry(world, class_names=str(names)), fakes.FakeEmbedder())
  assert got["num_classes"] == 9 and got["top1"] == 100.0
  names.write_text("red things\ngreen things\n")
  with pytest.raises(common.EvalDataError, match=r"labels \['blue_things', .*6 in all.*"
                     "not in the class names"):
    _run(_entry(world, class_names=str(names)), fakes.FakeEmbedder())
  names.write_text("red things\nred_things\n")
  with pytest.raises(common.EvalDataError,
                     match="classes.txt:2: class 'red_things' repeats line 1"):
    _run(_entry(world, class_names=str(names)), fakes.FakeEmbedder())


def test_bad_options_are_named(world, tmp_path):
  with pytest.raises(ConfigError, match=r"e.ks=\(1, 10\): top-10 needs at least 10 classes"):
    _run(_entry(world, ks=(1, 10)), fakes.FakeEmbedder())
  with pytest.raises(ConfigError, match="e.templates: template 'a video' must contain"):
    _run(_entry(world, templates=("a video",)), fakes.FakeEmbedder())
  with pytest.raises(common.EvalDataError, match="e.class_names: no such file"):
    _run(_entry(world, class_names=str(tmp_path / "none.txt")), fakes.FakeEmbedder())


def test_unlabelled_files_are_refused(world, tmp_path):
  test_csv = tmp_path / "test.csv"
  test_csv.write_text("youtube_id,time_start,time_end,split\nkin00000000,5,15,test\n")
  entry = {**_entry(world), "annotations": str(test_csv)}
  with pytest.raises(common.EvalDataError, match="has no label"):
    _run(entry, fakes.FakeEmbedder())
