"""seqio tasks yield correctly shaped, decodable examples from a source."""
import numpy as np
import pytest

from vidistill.data import tasks
from vidistill.data import vocab as vocab_lib

T, R = 4, 8
CAPTIONS = ["a red circle moves left", "a blue square grows then shrinks",
            "a green triangle spins", "a small yellow circle moves up"]


def _examples(split):
  rng = np.random.default_rng(0 if split == "train" else 1)
  for i, caption in enumerate(CAPTIONS):
    yield {"id": f"{split}{i}", "frames": rng.integers(0, 256, (T, R, R, 3), dtype=np.uint8),
           "caption": caption, "question": f"what does object {i} do?", "answer": caption,
           "captions": [caption, caption.upper()]}


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("vocab") / "spm.model")
  sentences = CAPTIONS * 20 + ["what does object do", "caption en:"] * 20
  return vocab_lib.load_vocabulary(vocab_lib.train_sentencepiece(sentences, path, vocab_size=320))


@pytest.fixture(scope="module")
def source():
  return tasks.examples_source(_examples, ["train", "test"], num_frames=T, resolution=R,
                               text_keys=("caption", "question", "answer"), list_keys=("captions",))


def _first(task, split="train", lengths=None):
  ds = task.get_dataset(lengths or {"inputs": 64, "targets": 64}, split=split, shuffle=False)
  return list(ds.as_numpy_iterator())


def test_caption_task_shapes_and_round_trip(vocab, source):
  examples = _first(tasks.caption_task("t_caption", source, vocab))
  assert len(examples) == len(CAPTIONS)
  for ex, (i, caption) in zip(examples, enumerate(CAPTIONS)):
    assert ex["video"].dtype == np.uint8 and ex["video"].shape == (T, R, R, 3)
    assert ex["targets"].dtype == np.int32 and ex["targets"][-1] == vocab_lib.EOS_ID
    assert vocab.decode(ex["targets"].tolist()) == caption
    assert vocab.decode(ex["inputs"].tolist()) == "caption en:"
    assert ex["id"].decode() == f"train{i}"


def test_video_is_passed_through_bit_exact(vocab, source):
  examples = _first(tasks.contrastive_task("t_contrastive", source, vocab, caption_key="caption"),
                    split="test")
  expected = [ex["frames"] for ex in _examples("test")]
  for ex, frames in zip(examples, expected):
    np.testing.assert_array_equal(ex["video"], frames)
    assert "inputs" not in ex


def test_instruction_task_prompts(vocab, source):
  task = tasks.instruction_task("t_instr", source, vocab, prompt_prefix="")
  ex = _first(task)[1]
  assert vocab.decode(ex["inputs"].tolist()) == "what does object 1 do?"
  assert vocab.decode(ex["targets"].tolist()) == CAPTIONS[1]


def test_list_caption_drawn_from_list_and_trimmed(vocab, source):
  task = tasks.caption_task("t_list", source, vocab, caption_key="captions")
  examples = _first(task, lengths={"inputs": 64, "targets": 3})
  for ex, caption in zip(examples, CAPTIONS):
    assert len(ex["targets"]) == 3 and ex["targets"][-1] == vocab_lib.EOS_ID
    assert ex["targets_pretokenized"].decode() in (caption, caption.upper())


def test_register_is_explicit_and_replaces(vocab, source):
  import seqio
  task = tasks.caption_task("t_registered", source, vocab)
  assert "t_registered" not in seqio.TaskRegistry.names()
  tasks.register(task)
  tasks.register(tasks.caption_task("t_registered", source, vocab, prompt="describe:"))
  ex = next(iter(seqio.get_mixture_or_task("t_registered").get_dataset(
      {"inputs": 64, "targets": 64}, split="train", shuffle=False).as_numpy_iterator()))
  assert vocab.decode(ex["inputs"].tolist()) == "describe:"


def test_bad_frames_shape_names_example(vocab):
  def bad(split):
    yield {"id": "clip7", "frames": np.zeros((T + 1, R, R, 3), np.uint8), "caption": "x"}
  src = tasks.examples_source(bad, ["train"], num_frames=T, resolution=R, text_keys=("caption",))
  with pytest.raises(Exception, match="clip7"):
    _first(tasks.caption_task("t_bad", src, vocab))


def test_shards_source_feeds_the_same_examples(vocab, tmp_path):
  from vidistill.data import shards
  rows = list(_examples("train"))
  shards.write_shards(rows, str(tmp_path / "train"), 2)
  src = tasks.shards_source({"train": str(tmp_path / "train-*")})
  got = _first(tasks.caption_task("t_shards", src, vocab, caption_key="captions"))
  by_id = {ex["id"].decode(): ex for ex in got}
  assert sorted(by_id) == sorted(r["id"] for r in rows)
  for row in rows:
    ex = by_id[row["id"]]
    np.testing.assert_array_equal(ex["video"], row["frames"])
    assert ex["targets_pretokenized"].decode() in row["captions"]
