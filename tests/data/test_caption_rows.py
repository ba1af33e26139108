"""Caption files round-trip in every format; TFRecord files parse with tf.data as written."""
import pytest

from vidistill.data import caption_rows


def _rows():
  decode = {"method": "beam", "beam_size": 4, "length_penalty": 0.6}
  return [
      {"video_id": "../../x", "path": "a.mp4", "start": 1.5, "end": 3.25, "file": "/abs/a.mp4",
       "file_start": 1.5, "file_end": 3.25, "prompt_name": "short", "prompt": "caption en:",
       "sample": 0, "caption": "a red ball",
       "log_likelihood": -3.75, "checkpoint": "ckpt@1", "decode": decode},
      {"video_id": "日本語の動画 " + "x" * 300, "path": "", "start": None, "end": None,
       "file": "s.tfrecord#3", "file_start": None, "file_end": None, "prompt_name": "detailed",
       "prompt": "describe en:", "sample": 2,
       "caption": "ünïcode, \"quotes\"\nnewline", "log_likelihood": -12.3456789,
       "checkpoint": "ckpt@1", "decode": decode},
  ]


@pytest.mark.parametrize("fmt", caption_rows.FORMATS)
def test_round_trip(tmp_path, fmt):
  path = str(tmp_path / f"unit{caption_rows.EXTENSIONS[fmt]}")
  assert caption_rows.write_rows(path, _rows(), fmt) == 2
  back = list(caption_rows.read_rows(path, fmt))
  for got, want in zip(back, _rows(), strict=True):
    assert list(got) == list(want)  # Same keys, same order, whatever the format.
    assert got["log_likelihood"] == pytest.approx(want["log_likelihood"], rel=1e-6)
    got.pop("log_likelihood"), want.pop("log_likelihood")
    assert got == want


def test_empty_file_round_trips(tmp_path):
  for fmt in caption_rows.FORMATS:
    path = str(tmp_path / f"empty{caption_rows.EXTENSIONS[fmt]}")
    assert caption_rows.write_rows(path, [], fmt) == 0 and list(caption_rows.read_rows(path, fmt)) == []


def test_tfrecord_rows_parse_with_tf_data(tmp_path):
  import tensorflow as tf
  path = str(tmp_path / "u.tfrecord")
  caption_rows.write_rows(path, _rows(), "tfrecord")
  spec = {"video_id": tf.io.FixedLenFeature([], tf.string),
          "caption": tf.io.FixedLenFeature([], tf.string),
          "log_likelihood": tf.io.FixedLenFeature([], tf.float32),
          "start": tf.io.VarLenFeature(tf.float32)}
  parsed = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]
  assert [p["caption"].numpy().decode() for p in parsed] == [r["caption"] for r in _rows()]
  assert parsed[0]["start"].values.numpy().tolist() == [1.5]
  assert parsed[1]["start"].values.shape == (0,)


def test_unknown_format_and_bad_jsonl(tmp_path):
  with pytest.raises(ValueError, match="not one of"):
    caption_rows.write_rows(str(tmp_path / "x"), [], "parquet")
  path = tmp_path / "bad.jsonl"
  path.write_text('{"a": 1}\n{oops\n')
  with pytest.raises(ValueError, match=r"bad.jsonl:2: invalid JSON"):
    list(caption_rows.read_rows(str(path)))
