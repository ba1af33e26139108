"""resolve_video finds each data set's files in the layouts downloaders write, with their window."""
import os

import pytest

from vidistill.data import annotations
from vidistill.data.records import VideoRecord

DATA = os.path.join(os.path.dirname(__file__), "testdata", "annotations")


def _touch(root, *parts):
  path = root.joinpath(*parts)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b"")
  return str(path)


def test_msrvtt_clip_by_id(tmp_path):
  (record,) = [r for r in annotations.read_msrvtt(os.path.join(DATA, "msrvtt", "MSRVTT_data.json"))
               if r.video_id == "video7020"]
  expected = _touch(tmp_path, "video7020.mp4")
  assert annotations.resolve_video(record, str(tmp_path)) == annotations.ResolvedVideo(expected,
                                                                                       None)


def test_vatex_clip_file_is_decoded_whole(tmp_path):
  record = annotations.read_vatex(os.path.join(DATA, "vatex", "vatex_training_v1.0.json"))[0]
  expected = _touch(tmp_path, "train", "Ptf_2VRj-V0_000122_000132.webm")
  resolved = annotations.resolve_video(record, str(tmp_path))
  assert resolved.path == expected and resolved.window is None


def test_vatex_full_source_video_gets_the_window(tmp_path):
  record = annotations.read_vatex(os.path.join(DATA, "vatex", "vatex_training_v1.0.json"))[0]
  expected = _touch(tmp_path, "Ptf_2VRj-V0.mp4")
  resolved = annotations.resolve_video(record, str(tmp_path))
  assert resolved.path == expected and resolved.window == (122.0, 132.0)


def test_kinetics_label_folders_and_clip_preferred_over_source(tmp_path):
  records = annotations.read_kinetics(os.path.join(DATA, "kinetics", "validate.csv"))
  drum = records[1]
  clip = _touch(tmp_path, "validate", "air_drumming", "--nQbRBEz2s_000104_000114.mp4")
  _touch(tmp_path, "--nQbRBEz2s.mp4")  # The full video too: the clip, more specific, wins.
  assert annotations.resolve_video(drum, str(tmp_path)) == annotations.ResolvedVideo(clip, None)
  os.remove(clip)
  resolved = annotations.resolve_video(drum, str(tmp_path))
  assert resolved.path.endswith("--nQbRBEz2s.mp4") and resolved.window == (104.0, 114.0)


def test_internvid_window_applies_to_the_youtube_video(tmp_path):
  record = annotations.read_internvid(
      os.path.join(DATA, "internvid", "InternVid-10M-FLT-sample.jsonl"))[0]
  expected = _touch(tmp_path, "Aa1Bb2Cc3Dd.mkv")
  resolved = annotations.resolve_video(record, str(tmp_path))
  assert resolved.path == expected and resolved.window == pytest.approx((320.12, 324.32))


def test_record_path_relative_and_without_extension(tmp_path):
  record = annotations.read_nextqa(os.path.join(DATA, "nextqa", "val.csv"))[0]
  expected = _touch(tmp_path, "1023", "4010069381.mp4")
  assert annotations.resolve_video_path(record, str(tmp_path)) == expected
  coco = annotations.read_coco_captions(os.path.join(DATA, "coco", "captions_val2017.json"))[0]
  image = _touch(tmp_path, "val2017", "000000391895.jpg")
  assert annotations.resolve_video_path(coco, str(tmp_path / "val2017")) == image


def test_activitynet_v_prefix(tmp_path):
  record = annotations.read_activitynet_qa(os.path.join(DATA, "activitynet_qa", "test_q.json"))[0]
  expected = _touch(tmp_path, "v_AbCdEfGhIjK.mp4")
  assert annotations.resolve_video_path(record, str(tmp_path)) == expected


def test_vidln_dataset_subfolder(tmp_path):
  record = annotations.read_vidln(os.path.join(DATA, "vidln", "OVIS_train_sample.jsonl"))[1]
  expected = _touch(tmp_path, "OVIS_train", "5d24e4ea.mp4")
  assert annotations.resolve_video_path(record, str(tmp_path)) == expected


def test_missing_video_lists_what_was_tried(tmp_path):
  record = VideoRecord(video_id="video5", split="test")
  _touch(tmp_path, "video5.mov")
  with pytest.raises(annotations.VideoPathError) as info:
    annotations.resolve_video_path(record, str(tmp_path))
  message = str(info.value)
  assert "'video5'" in message and os.path.join(str(tmp_path), "video5.mp4") in message
  assert os.path.join(str(tmp_path), "test", "video5.avi") in info.value.tried
  assert isinstance(info.value, FileNotFoundError)
  found = annotations.resolve_video_path(record, str(tmp_path), extensions=(".mov",))
  assert found.endswith("video5.mov")


def test_record_path_on_another_file_system_is_used_whole_and_a_web_url_is_not(tmp_path):
  import uuid
  import tensorflow as tf
  remote = f"ram://videos-{uuid.uuid4().hex}/clip.mp4"
  with tf.io.gfile.GFile(remote, "wb") as f:
    f.write(b"")
  record = VideoRecord(video_id="clip_on_gs", path=remote)
  assert annotations.resolve_video_path(record, str(tmp_path)) == remote
  # A YouTube page is not a file: the id names the local file instead.
  web = VideoRecord(video_id="abc", path="https://www.youtube.com/watch?v=abc")
  local = _touch(tmp_path, "abc.mp4")
  assert annotations.resolve_video_path(web, str(tmp_path)) == local
