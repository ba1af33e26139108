"""The text-only source of stage_input (the LM's pre-training): prompt pairs + denoising pairs."""
import collections
import json

import numpy as np
import pytest

from vidistill.train import stage_input as si

CAPTION = "a small blue cross moves left and a large red ring grows, then the cross bounces"


def test_corrupt_keeps_a_subset_of_the_words_moved_at_most_window_places():
  words = CAPTION.split()
  for seed in range(20):
    out = si.corrupt(CAPTION, np.random.default_rng(seed), keep=0.75, window=3.0).split()
    assert out and not collections.Counter(out) - collections.Counter(words)
  # keep=1: a permutation in which no word moves more than ceil(window) places.
  for seed in range(20):
    out = si.corrupt(CAPTION, np.random.default_rng(seed), keep=1.0, window=2.0).split()
    assert sorted(out) == sorted(words)
    unique = "a b c d e f g h i j k l m n o".split()
    moved = si.corrupt(" ".join(unique), np.random.default_rng(seed), keep=1.0, window=2.0).split()
    assert max(abs(moved.index(w) - i) for i, w in enumerate(unique)) <= 2
  assert si.corrupt(CAPTION, np.random.default_rng(0), keep=1.0, window=1e-9) == CAPTION
  # keep=1 with a real window does reorder something over 20 draws; keep small drops words.
  assert any(si.corrupt(CAPTION, np.random.default_rng(s), keep=1.0, window=3.0) != CAPTION
             for s in range(20))
  assert len(si.corrupt(CAPTION, np.random.default_rng(0), keep=0.01, window=3.0).split()) == 1


def _record(**kw):
  return {"id": "v0", "gold_captions": [CAPTION, "first a small blue cross moves left"],
          "frame_captions": ["a small blue cross on the left"], "alt_text": "blue clip",
          "questions": [{"question": "what moves first?", "answer": "the cross"}], **kw}


def test_denoise_pairs_rebuild_every_caption_from_a_corrupted_copy_before_the_prompt():
  rec = _record()
  pairs = list(si.denoise_pairs("v0", rec, keep=0.75, window=3.0, seed=0))
  targets = [t for _, t in pairs]
  assert targets == rec["gold_captions"] + rec["frame_captions"]  # Not alt-text, not answers.
  for source, target in pairs:
    assert source.endswith(" " + si.CAPTION_PROMPT)
    corrupted = source[:-len(si.CAPTION_PROMPT) - 1].split()
    assert not collections.Counter(corrupted) - collections.Counter(target.split())
  assert pairs == list(si.denoise_pairs("v0", rec, keep=0.75, window=3.0, seed=0))
  assert pairs != list(si.denoise_pairs("v0", rec, keep=0.75, window=3.0, seed=1))


def _world(tmp_path):
  (tmp_path / "truth").mkdir()
  with open(tmp_path / "truth" / "labeled.jsonl", "w") as f:
    f.write(json.dumps(_record()) + "\n")
  return str(tmp_path)


def test_text_examples_add_denoising_pairs_only_when_configured(tmp_path):
  world = _world(tmp_path)
  plain = list(si._text_examples({"world": world, "text_splits": "labeled"}, 8)("train"))
  both = list(si._text_examples({"world": world, "text_splits": "labeled",
                                 "denoise": {"keep": 0.75, "window": 3.0}}, 8)("train"))
  assert {(e["question"], e["answer"]) for e in plain} < {(e["question"], e["answer"])
                                                          for e in both}
  extra = len(both) - len(plain)
  assert extra == 3  # Two gold captions and one frame caption.
  assert len({e["id"] for e in both}) == len(both)
  assert all(e["frames"].shape == (1, 8, 8, 3) and not e["frames"].any() for e in both)
  with pytest.raises(si.StageDataError, match=r"data.denoise.keep=1.5"):
    si._text_examples({"world": world, "text_splits": "labeled",
                       "denoise": {"keep": 1.5, "window": 3.0}}, 8)


def test_max_examples_reads_a_seeded_subset_in_order(tmp_path):
  world = _world(tmp_path)
  data = {"world": world, "text_splits": "labeled", "denoise": {"keep": 0.75, "window": 3.0}}
  every = [e["id"] for e in si._text_examples(data, 8)("train")]
  some = [e["id"] for e in si._text_examples({**data, "max_examples": 4}, 8)("train")]
  again = [e["id"] for e in si._text_examples({**data, "max_examples": 4}, 8)("train")]
  other = [e["id"] for e in si._text_examples({**data, "max_examples": 4, "seed": 5}, 8)("train")]
  assert len(every) > 4 and len(some) == 4 and some == again and other != some
  assert some == [i for i in every if i in set(some)]  # A subset, in the original order.
  assert [e["id"] for e in si._text_examples({**data, "max_examples": 100}, 8)("train")] == every
  with pytest.raises(si.StageDataError, match=r"data.max_examples=-1 is negative"):
    si._text_examples({**data, "max_examples": -1}, 8)


def test_stage_data_sizes_out_of_range_are_errors_not_defaults(tmp_path):
  # A zero or negative size is an error that names the key, never silently the default.
  with pytest.raises(si.StageDataError, match=r"data.fraction=0.0 must be in \(0, 1\]"):
    si._world_examples({"world": _world(tmp_path), "split": "labeled", "fraction": 0.0}, None)
  with pytest.raises(si.StageDataError, match=r"data.passes=0 must be >= 1"):
    next(si.iter_examples({"kind": "caption", "world": str(tmp_path), "split": "labeled",
                           "seq_lengths": {}, "passes": 0}, None, "vlm"))
