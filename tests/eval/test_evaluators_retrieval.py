"""Tests for vidistill/eval/evaluators/retrieval.py on real mp4 clips and real annotation layouts.

The fake dual encoder embeds a clip and its captions alike, so R@1 must be 100; seeing every clip
as the next colour of the palette, its ranks must equal those of a naive loop over the fake's own
vectors (written here from the protocol, not with the metrics module).
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluator_fakes import SETTINGS, world  # pylint: disable=unused-import  (fixture)

from vidistill.config_args import ConfigError
from vidistill.eval.evaluators import common
from vidistill.eval.evaluators import retrieval


def _entries(paths, root):
  msrvtt_videos = os.path.join(root, "msrvtt", "videos", "all")
  return {
      "msrvtt_full": dict(reader="msrvtt", annotations=paths["msrvtt"], video_root=msrvtt_videos,
                          reader_options={"split": "test"}, captions="all"),
      "msrvtt_1ka": dict(reader="msrvtt_1ka", annotations=paths["msrvtt_1ka"],
                         video_root=msrvtt_videos, captions="first"),
      "vatex": dict(reader="vatex", annotations=paths["vatex"],
                    video_root=os.path.join(root, "vatex", "videos"), captions="all"),
  }


def _run(entry, model, settings=SETTINGS, **extra):
  options = common.parse_options(retrieval.RetrievalOptions, {**entry, **extra}, "e")
  return dict(retrieval.RetrievalEvaluator("e", options, settings).run(model))


def _naive(model, colours, texts, text_colour):
  """Every metric from cosine similarities and rank counting in plain Python (pessimistic)."""
  def unit(v):
    return v / np.linalg.norm(v)
  videos = [unit(model.video_vector(c)) for c in colours]
  queries = [unit(model.text_vector(t)) for t in texts]
  sims = np.array([[float(q @ v) for v in videos] for q in queries])
  truth = [colours.index(c) for c in text_colour]
  t2v = [sum(s >= sims[t, truth[t]] for s in sims[t]) for t in range(len(texts))]
  v2t = []
  for v in range(len(videos)):
    own = [t for t in range(len(texts)) if truth[t] == v]
    v2t.append(min(sum(s >= sims[t, v] for s in sims[:, v]) for t in own))
  out = {}
  for prefix, ranks in (("t2v", np.array(t2v)), ("v2t", np.array(v2t))):
    for k in (1, 5, 10):
      out[f"{prefix}/R@{k}"] = 100.0 * np.mean(ranks <= k)
    out[f"{prefix}/MdR"], out[f"{prefix}/MnR"] = np.median(ranks), np.mean(ranks)
  return out


@pytest.mark.parametrize("name", ["msrvtt_full", "msrvtt_1ka", "vatex"])
def test_a_model_that_knows_each_clip_retrieves_perfectly(world, name):
  metrics = _run(_entries(*world)[name], fakes.FakeEmbedder())
  per_video = 1 if name == "msrvtt_1ka" else 3
  assert metrics["num_videos"] == 8 and metrics["num_texts"] == 8 * per_video
  for direction in ("t2v", "v2t"):
    assert metrics[f"{direction}/R@1"] == 100.0
    assert metrics[f"{direction}/MdR"] == 1.0 and metrics[f"{direction}/MnR"] == 1.0


@pytest.mark.parametrize("name", ["msrvtt_full", "msrvtt_1ka"])
def test_a_shifted_model_scores_as_the_naive_reference(world, name):
  model = fakes.FakeEmbedder(shift=1)
  metrics = _run(_entries(*world)[name], model)
  colours = list(fakes.COLOURS)
  if name == "msrvtt_1ka":  # The CSV's sentence is each clip's second caption.
    texts = [fakes.captions_of(c)[1] for c in colours]
    text_colour = colours
  else:
    texts = [t for c in colours for t in fakes.captions_of(c)]
    text_colour = [c for c in colours for _ in range(3)]
  want = _naive(model, colours, texts, text_colour)
  assert metrics["t2v/R@1"] == 0.0  # Every clip looks like another one.
  for key, value in want.items():
    assert metrics[key] == pytest.approx(value, abs=1e-9), key


def test_small_chunks_and_batches_give_the_same_numbers(world):
  entry = _entries(*world)["msrvtt_full"]
  model = fakes.FakeEmbedder(shift=3)
  default = _run(entry, model)
  settings = common.Settings(num_frames=4, resolution=32, batch_size=5, num_workers=1, buffer=2)
  assert _run(entry, model, settings, chunk=3, query_chunk=2) == default
  assert _run(entry, model, settings, chunk=3, query_chunk=2, batch_size=2) == default


def test_text_batches_are_padded_to_the_batch_size(world):
  model = fakes.FakeEmbedder()
  _run(_entries(*world)["msrvtt_full"], model)
  assert [len(b) for b in model.text_batches] == [3] * 8  # 24 captions in batches of 3.
  model = fakes.FakeEmbedder()
  _run(_entries(*world)["msrvtt_1ka"], model)
  assert [len(b) for b in model.text_batches] == [3, 3, 3]  # 8 sentences, the last batch padded.
  assert model.text_batches[-1][-1] == model.text_batches[-1][-2]


def test_bad_options_are_named(world):
  entry = _entries(*world)["msrvtt_full"]
  with pytest.raises(ConfigError, match=r"e.captions='some' is not one of \('all', 'first'\)"):
    _run(entry, fakes.FakeEmbedder(), captions="some")
  with pytest.raises(ConfigError, match="e.ties='random'"):
    _run(entry, fakes.FakeEmbedder(), ties="random")


def test_a_file_without_captions_is_refused(world):
  paths, root = world
  entry = dict(reader="nextqa", annotations=paths["nextqa"],
               video_root=os.path.join(root, "NExTVideo"))
  with pytest.raises(common.EvalDataError, match=r"record '1000_0' .* has no caption"):
    _run(entry, fakes.FakeEmbedder())
