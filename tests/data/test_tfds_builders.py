"""The TFDS builders turn a tiny fake manual dir (real mp4 files) into shards that read back."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from vidistill.data import video_write
from vidistill.data import tfds as vidistill_tfds

DATA = os.path.join(os.path.dirname(__file__), "testdata", "annotations")
T, R = 4, 16
COLORS = {"video0": (200, 30, 30), "video1": (30, 200, 30), "video7020": (30, 30, 200),
          "video9770": (200, 200, 30)}


def _clip(color, num_frames=8, size=32):
  return np.broadcast_to(np.array(color, np.uint8), (num_frames, size, size, 3)).copy()


def _build(builder_cls, config, manual_dir, data_dir):
  builder = builder_cls(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _read(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split)))


def _mean_colors(video):
  return video.reshape(video.shape[0], -1, 3).mean(axis=1)


def test_msrvtt_builder_end_to_end(tmp_path):
  manual = tmp_path / "manual"
  (manual / "videos" / "all").mkdir(parents=True)
  for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"):
    shutil.copy(os.path.join(DATA, "msrvtt", name), manual / name)
  for video_id, color in COLORS.items():
    video_write.write_video(manual / "videos" / "all" / f"{video_id}.mp4", _clip(color))
  config = vidistill_tfds.VideoConfig(name="test_f4_r16", num_frames=T, resolution=R)
  builder = _build(vidistill_tfds.VidistillMsrvtt, config, manual, tmp_path / "data")

  train = sorted(_read(builder, "train"), key=lambda e: e["id"])
  assert [e["id"].decode() for e in train] == ["video0", "video1"]
  assert [c.decode() for c in train[1]["captions"]] == ["a man is cooking noodles in a kitchen",
                                                       "someone stirs a pot"]
  for example in train:
    video = example["video"]
    assert video.shape == (T, R, R, 3) and video.dtype == np.uint8
    np.testing.assert_allclose(_mean_colors(video), [COLORS[example["id"].decode()]] * T, atol=12)

  test = _read(builder, "test")
  by_id = {e["id"].decode(): [c.decode() for c in e["captions"]] for e in test}
  assert by_id == {"video9770": ["a person is connecting something to system",
                                 "a man plugs a cable into a computer"],
                   "video7020": ["two men play tennis", "players hit a ball over a net"]}


def test_annotated_videos_builder_windows_and_missing_videos(tmp_path):
  manual = tmp_path / "manual"
  (manual / "annotations").mkdir(parents=True)
  train = [{"videoID": "Aa1Bb2Cc3Dd_000000_000004", "enCap": ["a red clip"]},
           {"videoID": "Ee4Ff5Gg6Hh_000005_000009", "enCap": ["the blue part of a longer video"]},
           {"videoID": "Ii7Jj8Kk9Ll_000001_000002", "enCap": ["a video nobody downloaded"]}]
  (manual / "annotations" / "vatex_training_v1.0.json").write_text(json.dumps(train))
  shutil.copy(os.path.join(DATA, "vatex", "vatex_public_test_english_v1.1.json"),
              manual / "annotations")
  # A pre-cut clip (decoded whole), and a full source video in which only seconds 5-9 are blue:
  # the builder must decode the clip's window of it, and skip the third, missing, video.
  (manual / "videos" / "train").mkdir(parents=True)
  video_write.write_video(manual / "videos" / "train" / "Aa1Bb2Cc3Dd_000000_000004.mp4",
                       _clip((220, 20, 20)), fps=2.0)
  source = np.concatenate([_clip((20, 220, 20), 10), _clip((20, 20, 220), 10)])  # 0-5 s, 5-10 s
  video_write.write_video(manual / "videos" / "Ee4Ff5Gg6Hh.mp4", source, fps=2.0)
  (manual / "videos" / "test").mkdir()
  video_write.write_video(manual / "videos" / "test" / "xYz123AbC_d_000030_000040.mp4",
                       _clip((128, 128, 128)), fps=2.0)

  config = vidistill_tfds.AnnotatedVideosConfig(name="vatex_test", format="vatex", num_frames=T,
                                                resolution=R)
  builder = _build(vidistill_tfds.VidistillAnnotatedVideos, config, manual, tmp_path / "data")
  assert set(builder.info.splits) == {"train", "test"}
  examples = {e["id"].decode(): e for e in _read(builder, "train")}
  assert set(examples) == {"Aa1Bb2Cc3Dd_000000_000004", "Ee4Ff5Gg6Hh_000005_000009"}
  np.testing.assert_allclose(_mean_colors(examples["Aa1Bb2Cc3Dd_000000_000004"]["video"]),
                             [(220, 20, 20)] * T, atol=12)
  np.testing.assert_allclose(_mean_colors(examples["Ee4Ff5Gg6Hh_000005_000009"]["video"]),
                             [(20, 20, 220)] * T, atol=12)
  blue = examples["Ee4Ff5Gg6Hh_000005_000009"]
  assert [c.decode() for c in blue["captions"]] == ["the blue part of a longer video"]
  assert blue["answer_index"] == -1 and blue["question"] == b""
  (test,) = _read(builder, "test")
  assert test["video_id"] == b"xYz123AbC_d_000030_000040"


def test_annotated_videos_rejects_unknown_format(tmp_path):
  config = vidistill_tfds.AnnotatedVideosConfig(name="nope", format="not_a_format")
  with pytest.raises(ValueError, match="not_a_format"):
    vidistill_tfds.VidistillAnnotatedVideos(config=config, data_dir=str(tmp_path))
