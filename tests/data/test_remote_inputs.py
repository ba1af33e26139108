"""Annotation files, a synthetic world's files and its vocabulary read from a remote file system
(TensorFlow's ram:// standing in for gs://, through vidistill.fs)."""
import json
import os
import uuid

import pytest

from vidistill import fs
from vidistill.data import annotations
from vidistill.data import vocab as vocab_lib
from vidistill.train import stage_input

DATA = os.path.join(os.path.dirname(__file__), "testdata", "annotations")


def _copy_tree(local, remote):
  for folder, _, names in os.walk(local):
    target = os.path.join(remote, os.path.relpath(folder, local))
    fs.makedirs(target)
    for name in names:
      with open(os.path.join(folder, name), "rb") as f, fs.open(os.path.join(target, name),
                                                                "wb") as g:
        g.write(f.read())


def test_every_reader_reads_its_sample_from_ram_as_from_disk():
  remote = f"ram://annotations-{uuid.uuid4().hex}"
  _copy_tree(DATA, remote)
  from test_annotations import SAMPLES  # pylint: disable=g-import-not-at-top
  for name, parts in SAMPLES.items():
    local = annotations.READERS[name](os.path.join(DATA, *parts))
    # Sibling files (MSR-VTT captions, NExT-QA's video map, SMiT transcripts) are found there too.
    assert annotations.READERS[name](os.path.join(remote, *parts)) == local, name
  with pytest.raises(annotations.AnnotationError, match="no such annotation file"):
    annotations.READERS["vatex"](os.path.join(remote, "vatex", "missing.json"))


def test_world_files_and_vocabulary_from_ram(tmp_path):
  world = f"ram://world-{uuid.uuid4().hex}"
  info = {"config": {"num_frames": 4, "resolution": 32}, "splits": {"train": 2}}
  with fs.open(os.path.join(world, "world.json"), "w") as f:
    json.dump(info, f)
  truth = [{"id": "v0", "short_caption": "a red ball"}, {"id": "v1", "short_caption": "a cube"}]
  fs.makedirs(os.path.join(world, "truth"))
  with fs.open(os.path.join(world, "truth", "train.jsonl"), "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in truth))
  fs.makedirs(os.path.join(world, "shards"))
  for i in (1, 0):
    with fs.open(os.path.join(world, "shards", f"train-{i:05d}-of-00002.tfrecord"), "wb") as f:
      f.write(b"")
  sentences = [f"a {c} {s} moves {d}" for c in ("red", "blue", "green") for s in ("ball", "cube")
               for d in ("left", "right", "up", "down")] * 5
  local_model = vocab_lib.train_sentencepiece(sentences, str(tmp_path / "vocab.model"),
                                              vocab_size=300)
  with open(local_model, "rb") as f, fs.open(os.path.join(world, "vocab.model"), "wb") as g:
    g.write(f.read())

  assert stage_input.world_info(world) == info
  assert stage_input._truth(world, "train") == {r["id"]: r for r in truth}
  assert stage_input._split_shards(world, "train") == [
      f"{world}/shards/train-00000-of-00002.tfrecord",
      f"{world}/shards/train-00001-of-00002.tfrecord"]
  with pytest.raises(stage_input.StageDataError, match="no shards of split 'val'"):
    stage_input._split_shards(world, "val")
  with pytest.raises(stage_input.StageDataError, match="is not a synthetic world"):
    stage_input.world_info(f"ram://world-{uuid.uuid4().hex}")
  remote_vocab = stage_input.vocabulary({"world": world})
  local_vocab = vocab_lib.load_vocabulary(str(tmp_path / "vocab.model"))
  text = "a green cube moves up"
  assert remote_vocab.encode(text) == local_vocab.encode(text)
  assert remote_vocab.decode(remote_vocab.encode(text)) == text
