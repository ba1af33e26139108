"""Tests for vidistill.data.shards: both formats round trip, host splits, tf.data parity, errors."""
import os

import numpy as np
import pytest
import tensorflow as tf

from vidistill.data import shards


def _examples(n, *, frames=True, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    example = {
        "id": f"video{i:03d}_é",  # Non-ASCII survives the utf-8 round trip.
        "captions": [f"caption {j} of clip {i}" for j in range(i % 3 + 1)],
        "title": f"title {i}",
        "start": 0.25 * i,
        "end": 0.25 * i + 1.5,
        "num": i,
        "video_bytes": rng.bytes(17 + i),
    }
    if frames:
      example["frames"] = rng.integers(0, 256, (3, 5 + i % 2, 7, 3), dtype=np.uint8)
    out.append(example)
  return out


def _assert_same(got, want):
  assert set(got) == set(want)
  for key, value in want.items():
    if isinstance(value, np.ndarray):
      assert got[key].dtype == value.dtype and got[key].shape == value.shape
      np.testing.assert_array_equal(got[key], value)
    elif isinstance(value, float):
      assert got[key] == float(np.float32(value))  # Stored as float32.
    else:
      assert got[key] == value and type(got[key]) is type(value), key


@pytest.mark.parametrize("fmt", ["tfrecord", "arrayrecord"])
@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_round_trip(tmp_path, fmt, encoding):
  examples = _examples(7)
  paths = shards.write_shards(examples, tmp_path / "out" / "train", 3, fmt,
                              frames_encoding=encoding)
  ext = shards.FORMATS[fmt]
  assert paths == [str(tmp_path / "out" / f"train-{i:05d}-of-00003{ext}") for i in range(3)]
  assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(p) for p in paths)
  # Round robin: shard k holds examples k, k + 3, ...
  for k, path in enumerate(paths):
    assert [e["id"] for e in shards.read_shards(path)] == [e["id"] for e in examples[k::3]]
  got = {e["id"]: e for e in shards.read_shards(str(tmp_path / "out" / "train-*"))}
  assert len(got) == 7
  for example in examples:
    _assert_same(got[example["id"]], example)
  assert shards.count_examples(paths) == 7
  assert shards.count_examples(str(tmp_path / "out" / "train")) == 7  # The prefix works too.


def test_png_is_smaller_for_flat_frames(tmp_path):
  flat = [{"id": "a", "frames": np.full((4, 64, 64, 3), 90, np.uint8)}]
  raw = shards.write_shards(flat, tmp_path / "raw", 1)
  png = shards.write_shards(flat, tmp_path / "png", 1, frames_encoding="png")
  assert os.path.getsize(png[0]) < os.path.getsize(raw[0]) / 10
  np.testing.assert_array_equal(next(shards.read_shards(png))["frames"], flat[0]["frames"])


@pytest.mark.parametrize("num_files", [4, 2, 1])
@pytest.mark.parametrize("fmt", ["tfrecord", "arrayrecord"])
def test_hosts_cover_everything_exactly_once(tmp_path, num_files, fmt):
  examples = _examples(10, frames=False)
  paths = shards.write_shards(examples, tmp_path / "c", num_files, fmt)
  seen = []
  for host in range(3):
    part = [e["id"] for e in shards.read_shards(paths, shard_index=host, shard_count=3)]
    assert part  # Every host gets work (by file with 4 files, by record otherwise).
    seen.extend(part)
  assert sorted(seen) == sorted(e["id"] for e in examples)
  with pytest.raises(shards.ShardError, match=r"shard_index must be in \[0, 3\), got 3"):
    next(shards.read_shards(paths, shard_index=3, shard_count=3))


@pytest.mark.parametrize("fmt", ["tfrecord", "arrayrecord"])
@pytest.mark.parametrize("host", [None, 1])
def test_tf_dataset_matches_python(tmp_path, fmt, host):
  examples = _examples(5)
  examples[2]["captions"] = []  # An empty list parses to an empty [0] string tensor.
  paths = shards.write_shards(examples, tmp_path / "d", 2, fmt, frames_encoding="png")
  split = {} if host is None else {"shard_index": host, "shard_count": 3}  # Record-level split.
  python = list(shards.read_shards(paths, **split))
  dataset = shards.as_tf_dataset(paths, fmt, **split)
  assert dataset.element_spec["frames"].dtype == tf.uint8
  tensors = list(dataset.as_numpy_iterator())
  assert len(tensors) == len(python) > 0
  for t, p in zip(tensors, python):
    assert t["id"].decode() == p["id"] and t["title"].decode() == p["title"]
    assert [c.decode() for c in t["captions"]] == p["captions"]
    assert t["video_bytes"] == p["video_bytes"]
    assert t["start"] == np.float32(p["start"]) and t["num"] == p["num"]
    assert t["frames"].dtype == np.uint8 and t["frames"].shape == p["frames"].shape
    np.testing.assert_array_equal(t["frames"], p["frames"])


def test_other_array_dtypes_round_trip(tmp_path):
  example = {"id": "x", "features": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
             "tokens": np.array([[1, -2, 3]], np.int32)}
  paths = shards.write_shards([example], tmp_path / "a", 1, "arrayrecord")
  _assert_same(next(shards.read_shards(paths)), example)
  parsed = next(shards.as_tf_dataset(paths).as_numpy_iterator())
  np.testing.assert_array_equal(parsed["features"], example["features"])
  assert parsed["tokens"].dtype == np.int32


def test_bad_paths_and_files_give_clear_errors(tmp_path):
  with pytest.raises(shards.ShardError, match=r"nowhere/train-\*: no shard files match"):
    list(shards.read_shards(str(tmp_path / "nowhere" / "train-*")))
  with pytest.raises(shards.ShardError, match="no shard files match"):
    shards.count_examples(str(tmp_path / "missing_prefix"))
  text = tmp_path / "notes.txt"
  text.write_text("hello")
  with pytest.raises(shards.ShardError, match="notes.txt: not a shard file"):
    list(shards.read_shards(str(text)))
  for name in ("bad-00000-of-00001.tfrecord", "bad-00000-of-00001.array_record"):
    (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(shards.ShardError, match=f"{name}: .*damaged"):
      list(shards.read_shards(str(tmp_path / name)))
  with pytest.raises(shards.ShardError, match="unknown shard format 'parquet'"):
    shards.write_shards(_examples(1), tmp_path / "x", 1, "parquet")


def test_bad_examples_fail_before_any_final_shard_exists(tmp_path):
  good = _examples(3, frames=False)
  with pytest.raises(shards.ShardError, match=r"example 3 \(id 'odd'\).*keys"):
    shards.write_shards(good + [{"id": "odd", "title": "only"}], tmp_path / "s", 2)
  assert os.listdir(tmp_path) == []  # Temporary files removed, no final names created.
  with pytest.raises(shards.ShardError, match=r"'start' is str but float"):
    shards.write_shards(good + [dict(good[0], id="b", start="0.5")], tmp_path / "s", 2)
  with pytest.raises(shards.ShardError, match=r"'end'.*NoneType.*drop None"):
    shards.write_shards([dict(good[0], end=None)], tmp_path / "s", 1)
  with pytest.raises(shards.ShardError, match="non-empty str 'id'"):
    shards.write_shards([{"title": "no id"}], tmp_path / "s", 1)

  def crash():
    yield from good
    raise RuntimeError("source died")

  with pytest.raises(RuntimeError, match="source died"):
    shards.write_shards(crash(), tmp_path / "s", 2, "arrayrecord")
  assert os.listdir(tmp_path) == []


def test_empty_lists_take_the_list_kind_of_the_first_example(tmp_path):
  examples = [{"id": "a", "tags": [], "scores": [0.5]}, {"id": "b", "tags": ["x"], "scores": []}]
  paths = shards.write_shards(examples, tmp_path / "e", 1)
  assert list(shards.read_shards(paths)) == examples
  parsed = list(shards.as_tf_dataset(paths).as_numpy_iterator())
  assert parsed[1]["tags"].tolist() == [b"x"] and parsed[1]["scores"].dtype == np.float32
  with pytest.raises(shards.ShardError, match="its list there is empty"):
    shards.write_shards([{"id": "a", "n": []}, {"id": "b", "n": [1]}], tmp_path / "f", 1)


def test_not_a_vidistill_record(tmp_path):
  path = str(tmp_path / "plain-00000-of-00001.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(tf.train.Example().SerializeToString())
  with pytest.raises(shards.ShardError, match="not a vidistill example"):
    list(shards.read_shards(path))
