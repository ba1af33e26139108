"""Caption --input on a remote file system (TensorFlow's in-memory ram://): manifests, folders and
globs of videos and shard globs give the same entries as their local copies."""
import os
import uuid

import numpy as np
import pytest

from vidistill import fs
from vidistill.caption.manifest import ManifestError, load_manifest
from vidistill.data import shards, video_io, video_write


@pytest.fixture
def ram_root():
  return f"ram://manifest-{uuid.uuid4().hex}"


def _copy_tree(local_root, remote_root):
  """Copies every file under `local_root` to the same relative path under `remote_root`."""
  for folder, _, names in os.walk(local_root):
    for name in names:
      local = os.path.join(folder, name)
      remote = os.path.join(remote_root, os.path.relpath(local, local_root))
      fs.makedirs(os.path.dirname(remote))
      with open(local, "rb") as src, fs.open(remote, "wb") as dst:
        dst.write(src.read())


def _rows(manifest):
  return [(e.key, e.record.video_id, e.record.path, e.record.start, e.record.end)
          for e in manifest.entries]


@pytest.mark.parametrize("name, text", [
    ("m.jsonl", '{"id": "a", "path": "x/a.mp4", "start": 1, "end": 2.5}\n'
                '{"path": "gs://bucket/b.mp4"}\n\n{"id": "c"}\n'),
    ("m.csv", "\ufeffid,path,start,end\na,x/a.mp4,1,00:00:02.500\n,gs://bucket/b.mp4,,\nc,,,\n"),
    ("ivid.jsonl", '{"YoutubeID": "abcdefghijk", "Start_timestamp": "00:00:01.000", '
                   '"End_timestamp": "00:00:03.000", "Caption": "a cat"}\n'),
])
def test_remote_manifest_gives_the_local_entries(tmp_path, ram_root, name, text):
  local = tmp_path / name
  local.write_text(text, encoding="utf-8")
  remote = f"{ram_root}/in/{name}"
  _copy_tree(str(tmp_path), f"{ram_root}/in")
  want = load_manifest(str(local), allowed_schemes=("gs",))
  got = load_manifest(remote, allowed_schemes=("gs", "ram"))
  assert got.kind == want.kind == "videos" and got.source == remote
  assert _rows(got) == _rows(want) and len(got.entries) >= 1
  assert all(e.where.startswith(remote) for e in got.entries)
  # The scheme check covers the manifest file itself.
  with pytest.raises(ManifestError, match="allowed_schemes"):
    load_manifest(remote, allowed_schemes=("gs",))


def test_missing_remote_manifest_is_a_clear_error(ram_root):
  with pytest.raises(ManifestError, match="no such manifest file"):
    load_manifest(f"{ram_root}/none.jsonl", allowed_schemes=("ram",))


@pytest.fixture
def video_trees(tmp_path, ram_root):
  """The same small folder of videos (plus a non-video and a hidden file) locally and on ram://."""
  local = tmp_path / "v"
  frames = np.zeros((2, 16, 16, 3), np.uint8)
  for i, rel in enumerate(("a/one.mp4", "b/two.webm", "b/deep/three.mp4", "top.mkv")):
    video_write.write_video(str(local / rel), frames + 40 * i, fps=4.0)
  (local / "b" / "notes.txt").write_text("not a video")
  (local / ".hidden.mp4").write_bytes(b"x")
  remote = f"{ram_root}/v"
  _copy_tree(str(local), remote)
  return str(local), remote


def test_remote_video_folder_lists_the_local_ids(video_trees):
  local, remote = video_trees
  want = load_manifest(local)
  got = load_manifest(remote, allowed_schemes=("ram",))
  assert got.kind == "videos"
  assert [e.key for e in got.entries] == [e.key for e in want.entries] == [
      "a/one", "b/deep/three", "b/two", "top"]
  assert [e.record.path for e in got.entries] == [
      f"{remote}/a/one.mp4", f"{remote}/b/deep/three.mp4", f"{remote}/b/two.webm",
      f"{remote}/top.mkv"]  # Kept as given: never os.path.abspath-ed.
  # A trailing "/" lists the same; the remote file decodes.
  assert [e.key for e in load_manifest(remote + "/", allowed_schemes=("ram",)).entries] == [
      e.key for e in want.entries]
  frames = video_io.read_video(got.entries[0].record.path, 2, resolution=16)
  assert frames.shape == (2, 16, 16, 3)


def test_remote_video_glob_and_relative_spec_under_a_remote_root(video_trees):
  local, remote = video_trees
  want = load_manifest(os.path.join(local, "*", "*.mp4"))
  got = load_manifest(f"{remote}/*/*.mp4", allowed_schemes=("ram",))
  assert [e.key for e in got.entries] == [e.key for e in want.entries] == ["a/one"]
  assert got.entries[0].record.path == f"{remote}/a/one.mp4"
  # A relative folder or glob joined with a remote video_root stays remote.
  under_root = load_manifest("b", video_root=remote, allowed_schemes=("ram",))
  assert [e.record.path for e in under_root.entries] == [f"{remote}/b/deep/three.mp4",
                                                         f"{remote}/b/two.webm"]
  assert [e.key for e in under_root.entries] == ["deep/three", "two"]
  relative_glob = load_manifest("*/*.webm", video_root=remote, allowed_schemes=("ram",))
  assert [(e.key, e.record.path) for e in relative_glob.entries] == [
      ("b/two", f"{remote}/b/two.webm")]
  with pytest.raises(ManifestError, match="no video files match"):
    load_manifest(f"{remote}/*.avi", allowed_schemes=("ram",))
  with pytest.raises(ManifestError, match=r"\*\*"):
    load_manifest(f"{remote}/**/*.mp4", allowed_schemes=("ram",))
  # A remote root the config does not allow is refused before anything is listed.
  with pytest.raises(ManifestError, match="video_root"):
    load_manifest("b", video_root=remote, allowed_schemes=())


def test_remote_shard_glob_lists_the_shards(tmp_path, ram_root):
  examples = [{"id": f"s{i}", "frames": np.full((2, 8, 8, 3), i, np.uint8), "start": float(i),
               "end": i + 1.0} for i in range(5)]
  shards.write_shards(examples, str(tmp_path / "sh" / "pool"), 2, "tfrecord")
  _copy_tree(str(tmp_path / "sh"), f"{ram_root}/sh")
  want = load_manifest(str(tmp_path / "sh" / "pool-*.tfrecord"))
  spec = f"{ram_root}/sh/pool-*.tfrecord"
  got = load_manifest(spec, allowed_schemes=("ram",))
  assert got.kind == want.kind == "shards"
  assert [e.key for e in got.entries] == [e.key for e in want.entries] == [
      "s0", "s2", "s4", "s1", "s3"]
  assert sorted({e.record.path for e in got.entries}) == sorted(fs.glob(spec))
  assert all(e.record.path.startswith(f"{ram_root}/sh/pool-") for e in got.entries)
  assert [e.record.extra["offset"] for e in got.entries] == [0, 1, 2, 0, 1]
  with pytest.raises(ManifestError, match="matches no shard files"):
    load_manifest(f"{ram_root}/sh/other-*.tfrecord", allowed_schemes=("ram",))
  with pytest.raises(ManifestError, match="allowed_schemes"):
    load_manifest(spec)
