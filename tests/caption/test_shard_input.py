"""Example shards as input (frames already decoded, or encoded video bytes), and TFRecord output."""
import collections
import hashlib
import os

import numpy as np
import pytest

from caption_fakes import FakeCaptioner, clip_frames, colour_of, load_config, write_clip
from vidistill.caption import frames as frames_lib
from vidistill.caption import job
from vidistill.data import caption_output
from vidistill.caption.manifest import load_manifest
from vidistill.data import shards
from vidistill.data import video_write


@pytest.fixture(scope="module")
def shard_input(tmp_path_factory):
  root = tmp_path_factory.mktemp("shards")
  examples = [{"id": f"s{i:02d}", "frames": clip_frames(i, num_frames=8), "start": float(i),
               "end": i + 2.0} for i in range(9)]
  examples[4]["frames"] = clip_frames(4, size=16)  # Another resolution than the job's.
  raw = shards.write_shards(examples, str(root / "raw"), 2, "arrayrecord")
  encoded = [{"id": f"enc{i}", "video_bytes": video_write.encode_video(clip_frames(20 + i)),
              "start": 0.0, "end": 1.0} for i in range(3)]
  shards.write_shards(encoded, str(root / "enc"), 1, "tfrecord")
  spec = f"{root}/raw-*.array_record,{root}/enc-*.tfrecord"
  means = {e["id"]: e["frames"].reshape(-1, 3).mean(0) for e in examples}
  means.update({f"enc{i}": clip_frames(20 + i).reshape(-1, 3).mean(0) for i in range(3)})
  return {"spec": spec, "raw": raw, "means": means}


def test_shard_manifest_order_and_offsets(shard_input):
  m = load_manifest(shard_input["spec"])
  assert m.kind == "shards"
  # write_shards deals examples round-robin: shard 0 holds 0, 2, 4, ..., shard 1 holds 1, 3, ...
  assert [e.key for e in m.entries] == ["s00", "s02", "s04", "s06", "s08", "s01", "s03", "s05",
                                        "s07", "enc0", "enc1", "enc2"]
  assert [e.record.extra["offset"] for e in m.entries[:6]] == [0, 1, 2, 3, 4, 0]
  assert m.entries[1].window == (2.0, 4.0)


def test_job_over_shards_exactly_once(shard_input, tmp_path):
  config = load_config("tiny")
  for index in range(2):  # Two processes, one after the other, share the work.
    job.run_job(config, FakeCaptioner(), shard_input["spec"], str(tmp_path), process_index=index,
                process_count=2)
  rows = list(caption_output.iter_rows(str(tmp_path), prompt="short"))
  failures = caption_output.read_failures(str(tmp_path))
  assert [f["video_id"] for f in failures] == ["s04"] and failures[0]["kind"] == "shape"
  assert "16x16" in failures[0]["reason"] and "config.resolution" in failures[0]["reason"]
  counts = collections.Counter(r["video_id"] for r in rows)
  assert set(counts) == set(shard_input["means"]) - {"s04"} and set(counts.values()) == {1}
  for row in rows:  # Raw frames exactly; encoded ones within codec error.
    want = shard_input["means"][row["video_id"]]
    tolerance = 0.51 if row["video_id"].startswith("s") else 4
    assert np.abs(colour_of(row["caption"]) - want).max() <= tolerance, row


def test_shard_cursor_reads_forward_and_detects_changes(shard_input):
  m = load_manifest(shard_input["raw"][0])
  cursor = frames_lib.ShardCursor(num_frames=4, resolution=32)
  got = [cursor(e) for e in m.entries if e.key != "s04"]
  assert all(g.frames.shape == (4, 32, 32, 3) and g.window is None for g in got)
  assert [g.file for g in got] == [e.where for e in m.entries if e.key != "s04"]
  # Uniform resampling of 8 stored frames to 4 picks frames 1, 3, 5, 7 (segment centres).
  stored = clip_frames(0, num_frames=8)
  # Going back reopens the shard.
  np.testing.assert_array_equal(cursor(m.entries[0]).frames, stored[[1, 3, 5, 7]])
  moved = m.entries[1].__class__("other-id", m.entries[1].record, m.entries[1].where)
  with pytest.raises(frames_lib.ShardChangedError, match="changed since the unit plan"):
    cursor(moved)


def test_tfrecord_output_reads_back(shard_input, tmp_path):
  config = load_config("tiny,format=tfrecord")
  job.run_job(config, FakeCaptioner(), shard_input["raw"][1], str(tmp_path))
  assert [p.name for p in (tmp_path / "captions").iterdir()] == ["unit-000000.tfrecord"]
  captions = caption_output.read_captions(str(tmp_path))
  assert sorted(captions) == ["s01", "s03", "s05", "s07"]
  assert all(len(c) == 2 for c in captions.values())


def test_caption_source_feeds_the_dual_encoder(tmp_path):
  os.makedirs(tmp_path / "videos")
  for i in range(3):
    write_clip(str(tmp_path / "videos" / f"v{i}.mp4"), i, num_frames=16)
  out = str(tmp_path / "out")
  job.run_job(load_config("tiny"), FakeCaptioner(), str(tmp_path / "videos"), out)
  source = caption_output.caption_source(out, prompt="detailed", num_frames=4, resolution=32)
  examples = list(source.get_dataset("train", shuffle=False).as_numpy_iterator())
  assert [e["id"].decode() for e in examples] == ["v0", "v1", "v2"]
  for example in examples:
    assert example["frames"].shape == (4, 32, 32, 3)
    caption = example["caption"].decode()
    assert caption.startswith("describe") and list(example["captions"]) == [example["caption"]]
    # The source re-reads exactly the frames that were captioned (the caption hashes them).
    assert caption.endswith(hashlib.sha1(example["frames"].tobytes()).hexdigest()[:10])
  with pytest.raises(ValueError, match="join read_captions"):
    shard_out = str(tmp_path / "shard_out")
    job.run_job(load_config("tiny"), FakeCaptioner(), _any_shard(tmp_path), shard_out)
    caption_output.caption_source(shard_out, num_frames=4, resolution=32)


def _any_shard(tmp_path):
  return shards.write_shards([{"id": "a", "frames": clip_frames(0, num_frames=4)}],
                             str(tmp_path / "one"), 1, "tfrecord")[0]
