"""The world's vocabulary: every sentence of the world round-trips, without unknown pieces."""
import importlib.util
import os

import pytest

from vidistill.data import vocab as vocab_lib
from vidistill.data.synthetic import corpus
from vidistill.data.synthetic import world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(arg):
  spec = importlib.util.spec_from_file_location(
      "synthetic_config", os.path.join(ROOT, "configs", "data", "synthetic.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("world"))
  world.synth(_config("tiny"), d)
  return d


def test_every_world_sentence_round_trips(world_dir):
  vocab = vocab_lib.load_vocabulary(os.path.join(world_dir, corpus.VOCAB_FILE))
  truth = {s: world.load_truth(world_dir, s) for s in ("labeled", "narratives", "test", "qa",
                                                        "pool")}
  texts = list(corpus.sentences(truth))
  assert len(texts) > 100
  for text in texts:
    ids = vocab.encode(text)
    assert vocab_lib.UNK_ID not in ids, text
    assert vocab.decode(ids) == text
  # The world's words are pieces, not bytes: a caption costs about a token per word.
  caption = truth["test"][0]["gold_captions"][0]
  assert len(vocab.encode(caption)) <= 2 * len(caption.split())


def test_vocabulary_is_deterministic(world_dir, tmp_path):
  other = str(tmp_path / "again")
  world.synth(_config("tiny"), other)
  with open(os.path.join(world_dir, corpus.VOCAB_FILE), "rb") as a, \
       open(os.path.join(other, corpus.VOCAB_FILE), "rb") as b:
    assert a.read() == b.read()


def test_vocab_size_is_checked():
  config = _config("tiny")
  config.vocab_size = 100
  with pytest.raises(Exception, match="config.vocab_size=100"):
    world.synth(config, "/nonexistent/never-written")


def test_zero_shot_labels_are_each_clips_first_action(world_dir):
  import csv
  from vidistill.data.synthetic import vocab as world_vocab
  with open(os.path.join(world_dir, "annotations", "test_kinetics.csv"), encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  truth = world.load_truth(world_dir, "test")
  assert [r["youtube_id"] for r in rows] == [t["id"] for t in truth]
  for row, record in zip(rows, truth):
    first = min(record["events"], key=lambda e: (e["slot"], e["object"]))
    assert row["label"] == world_vocab.ACTION_CLASS[first["action"]]
    assert os.path.exists(os.path.join(world_dir, "videos", "test", row["youtube_id"] + ".mp4"))
  info = world.load_world(world_dir)
  assert info["chance"]["zero_shot_top1"] == round(1 / len(info["config"]["actions"]), 6)
