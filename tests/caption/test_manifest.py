"""Manifest parsing: every input kind, format detection, refused schemes naming the row."""
import json
import os

import pytest

from vidistill.caption import manifest as manifest_lib
from vidistill.caption.manifest import ManifestError, load_manifest


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return str(path)


def test_simple_csv_resolves_windows_and_default_ids(tmp_path):
  path = _write(tmp_path / "m.csv", "path,start,end,id\n"
                "a/x.mp4,1.5,3,clipA\n"
                "b/y.mp4,,,\n"
                "b/y.mp4,00:00:01.000,00:00:02.500,\n")
  m = load_manifest(path)
  assert m.kind == "videos" and m.source == path
  keys = [e.key for e in m.entries]
  assert keys == ["clipA", "b/y.mp4", "b/y.mp4_1.000_2.500"]
  first, _, third = m.entries
  assert (first.record.path, first.record.start, first.record.end) == ("a/x.mp4", 1.5, 3.0)
  assert first.window == (1.5, 3.0) and m.entries[1].window is None
  assert third.window == (1.0, 2.5)
  assert first.where == f"{path}:2"


def test_simple_jsonl_with_ids_only(tmp_path):
  path = _write(tmp_path / "m.jsonl", '{"id": "v1"}\n\n{"id": "v2", "start": 2, "end": 4}\n')
  m = load_manifest(path)
  assert [e.key for e in m.entries] == ["v1", "v2"]
  assert m.entries[1].record.path is None and m.entries[1].window == (2.0, 4.0)
  assert m.entries[1].where.endswith(":3")


def test_internvid_jsonl_gives_unique_clip_ids(tmp_path):
  rows = [{"YoutubeID": "qi3n35jW_Vw", "Start_timestamp": "00:05:20.120",
           "End_timestamp": "00:05:24.320", "Caption": "a man", "UMT_Score": 0.4},
          {"YoutubeID": "qi3n35jW_Vw", "Start_timestamp": "00:06:00.000",
           "End_timestamp": "00:06:02.000", "Caption": "a lake"}]
  path = _write(tmp_path / "internvid.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  m = load_manifest(path)
  assert [e.key for e in m.entries] == ["qi3n35jW_Vw_320.120_324.320",
                                        "qi3n35jW_Vw_360.000_362.000"]
  assert m.entries[0].record.video_id == "qi3n35jW_Vw"
  assert m.entries[0].window == pytest.approx((320.12, 324.32))


def test_videocc_headerless_csv(tmp_path):
  path = _write(tmp_path / "video_cc_public.csv",
                "dQw4w9WgXcQ,2000000,12000000,a dog, running on grass\n"
                "https://www.youtube.com/watch?v=9bZkp7q19f0,0,5500000,fireworks\n")
  m = load_manifest(path)
  assert [e.record.video_id for e in m.entries] == ["dQw4w9WgXcQ", "9bZkp7q19f0"]
  assert m.entries[0].window == (2.0, 12.0) and m.entries[1].window == (0.0, 5.5)


def test_named_reader_format(tmp_path):
  path = _write(tmp_path / "vatex.json", json.dumps(
      [{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["a"], "chCap": []}]))
  m = load_manifest(path, manifest_format="vatex")
  assert [e.key for e in m.entries] == ["Ptf_2VRj-V0_000122_000132"]
  with pytest.raises(ManifestError, match="'nosuch' is not 'auto', 'simple' or one of"):
    load_manifest(path, manifest_format="nosuch")


def test_glob_and_folder_of_videos(tmp_path):
  for rel in ("v/a/one.mp4", "v/b/two.webm", "v/b/notes.txt"):
    os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
    (tmp_path / rel).write_bytes(b"x")
  folder = load_manifest(str(tmp_path / "v"))
  assert folder.kind == "videos" and [e.key for e in folder.entries] == ["a/one", "b/two"]
  assert os.path.isabs(folder.entries[0].record.path)
  relative_glob = load_manifest("v/*/*.mp4", video_root=str(tmp_path))
  assert [e.key for e in relative_glob.entries] == ["a/one"]
  with pytest.raises(ManifestError, match="no video files match"):
    load_manifest(str(tmp_path / "v/*.mkv"))


@pytest.mark.parametrize("url", ["gs://bucket/x.mp4", "http://evil.example/x.mp4",
                                 "S3://b/k.mp4", "file:///etc/passwd"])
def test_remote_scheme_refused_naming_the_row(tmp_path, url):
  path = _write(tmp_path / "m.csv", f"id,path\nok,local.mp4\nbad,{url}\n")
  with pytest.raises(ManifestError) as info:
    load_manifest(path)
  message = str(info.value)
  assert f"{path}:3" in message and url in message and "allowed_schemes" in message


def test_allowed_scheme_passes_and_video_root_is_checked(tmp_path):
  path = _write(tmp_path / "m.csv", "id,path\nx,gs://bucket/x.mp4\n")
  assert load_manifest(path, allowed_schemes=("gs",)).entries[0].record.path == "gs://bucket/x.mp4"
  with pytest.raises(ManifestError, match="video_root"):
    load_manifest(path, video_root="https://host/videos", allowed_schemes=("gs",))


def test_duplicate_ids_error_names_both_rows_or_skip(tmp_path):
  path = _write(tmp_path / "m.jsonl", '{"id": "a", "path": "1.mp4"}\n{"id": "b", "path": "2.mp4"}\n'
                '{"id": "a", "path": "3.mp4"}\n')
  with pytest.raises(ManifestError) as info:
    load_manifest(path)
  assert f"{path}:3" in str(info.value) and f"{path}:1" in str(info.value)
  m = load_manifest(path, on_duplicate="skip")
  assert [(e.key, e.record.path) for e in m.entries] == [("a", "1.mp4"), ("b", "2.mp4")]


@pytest.mark.parametrize("text,match", [
    ("path,start,end\nx.mp4,3,1\n", "window"),
    ("id,start\nx,abc\n", "start"),
    ("id,path,start\n,,1\n", "neither 'id' nor 'path'"),
    ("foo,bar\n1,2\n", "cannot tell the manifest format"),
    ('{"id": ["a"]}\n', "expected text or a number"),
    ("", "empty"),
])
def test_bad_rows_name_file_and_line(tmp_path, text, match):
  name = "m.jsonl" if text.startswith("{") else "m.csv"
  path = _write(tmp_path / name, text)
  with pytest.raises(ManifestError, match=match) as info:
    load_manifest(path)
  assert path in str(info.value)


def test_missing_manifest_and_bad_options(tmp_path):
  with pytest.raises(ManifestError, match="no such manifest"):
    load_manifest(str(tmp_path / "nope.csv"))
  with pytest.raises(ManifestError, match="input kind"):
    load_manifest("x", kind="zip")


def test_scheme_of():
  assert manifest_lib.scheme_of("gs://a/b") == "gs"
  assert manifest_lib.scheme_of("HTTPS://a") == "https"
  assert manifest_lib.scheme_of("/abs/a.mp4") is None and manifest_lib.scheme_of("a:b.mp4") is None
  assert manifest_lib.scheme_of(None) is None


def test_input_kind_guessing(tmp_path):
  guess = manifest_lib._guess_kind  # pylint: disable=protected-access
  (tmp_path / "videos").mkdir()
  assert guess("s/pool-*.tfrecord", "") == "shards"
  assert guess("a-00000-of-00002.array_record,b.tfrecord", "") == "shards"
  assert guess("videos", str(tmp_path)) == "videos" and guess("v/*.mp4", "") == "videos"
  assert guess("manifest.csv", str(tmp_path)) == "manifest"
  with pytest.raises(ManifestError, match="mixes example shards"):
    guess("a.tfrecord,b.mp4", "")
  with pytest.raises(ManifestError, match="no shard files"):
    load_manifest(str(tmp_path / "none-*.tfrecord"))
