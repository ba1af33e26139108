"""Caption files: one file per unit, JSONL (default), TFRecord or ArrayRecord.

A row is one caption:
  video_id        str    the manifest entry's unique id (clip id for web clips)
  path            str    the video path as the manifest gave it ("" for ids or shard input)
  start, end      float  the window in seconds as the manifest gave it (None: whole video)
  file            str    what was decoded: an absolute local path, a URL, or "<shard>#<offset>"
  file_start, file_end  float  the window decoded within `file` (None: from the start / to the
                         end); with `file` this re-reads exactly the captioned frames
  prompt_name     str    the key of config.prompts ("short", "detailed", ...)
  prompt          str    the prompt text fed to the model
  sample          int    0 .. num_samples-1
  caption         str
  log_likelihood  float  sum of token log-probabilities under the model (TFRecord/ArrayRecord
                         store it as float32, the precision of a tf.train.Example float feature)
  checkpoint      str    the captioner's checkpoint id
  decode          dict   the decode settings (stored as JSON text in TFRecord / ArrayRecord)

TFRecord and ArrayRecord records are serialized `tf.train.Example`s (the same encoding as the
example shards), so `tf.data` reads them directly; TensorFlow is imported only for those formats.
Writers write to the path they are given (a temp name) and fsync on close: renaming into place is
commit.py's job. JSONL and TFRecord files may be remote (`gs://...`: vidistill.fs, tf.io.gfile);
ArrayRecord files are written and read through array_record's own file layer.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Mapping

from vidistill import fs

FORMATS = ("jsonl", "tfrecord", "arrayrecord")
EXTENSIONS = {"jsonl": ".jsonl", "tfrecord": ".tfrecord", "arrayrecord": ".array_record"}
_TEXT = ("video_id", "path", "file", "prompt_name", "prompt", "caption", "checkpoint")
_FLOAT = ("start", "end", "file_start", "file_end", "log_likelihood")
_INT = ("sample",)


def _check_format(fmt: str) -> None:
  if fmt not in FORMATS:
    raise ValueError(f"output format {fmt!r} is not one of {FORMATS}")


def fsync(path: str) -> None:
  """Flushes a file, or a folder's entries (after a rename into it), to the disk (no-op remote)."""
  fs.fsync_dir(path)


def write_rows(path: str, rows: Iterable[Mapping[str, Any]], fmt: str = "jsonl") -> int:
  """Writes every row to `path` in `fmt`, flushed and fsynced; returns the number of rows."""
  _check_format(fmt)
  count = 0
  if fmt == "jsonl":
    with fs.open(path, "w", encoding="utf-8") as f:
      for row in rows:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
      fs.fsync_file(f)
    return count
  records = [_to_example(row).SerializeToString() for row in rows]
  if fmt == "tfrecord":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.TFRecordWriter(path) as writer:
      for record in records:
        writer.write(record)
  else:
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
    for record in records:
      writer.write(record)
    writer.close()
  fsync(path)
  return len(records)


def read_rows(path: str, fmt: str = "jsonl") -> Iterator[dict[str, Any]]:
  """The rows of one caption file, in the order written."""
  _check_format(fmt)
  if fmt == "jsonl":
    with fs.open(path, encoding="utf-8") as f:
      for line_no, line in enumerate(f, start=1):
        if line.strip():
          try:
            yield json.loads(line)
          except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{line_no}: invalid JSON ({e.msg})") from None
    return
  if fmt == "tfrecord":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    records = (r.numpy() for r in tf.data.TFRecordDataset(path))
  else:
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    reader = array_record_module.ArrayRecordReader(path)
    try:
      records = list(reader.read_all())
    finally:
      reader.close()
  for record in records:
    yield _from_example(record)


def _to_example(row: Mapping[str, Any]):
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  example = example_pb2.Example()
  feature = example.features.feature
  for key in _TEXT:
    feature[key].bytes_list.value.append(str(row.get(key) or "").encode("utf-8"))
  for key in _FLOAT:
    if row.get(key) is not None:
      feature[key].float_list.value.append(float(row[key]))
  for key in _INT:
    feature[key].int64_list.value.append(int(row[key]))
  feature["decode"].bytes_list.value.append(json.dumps(row.get("decode", {}),
                                                       sort_keys=True).encode())
  return example


def _from_example(record: bytes) -> dict[str, Any]:
  """The row `_to_example` encoded, keys in the order the job writes them."""
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  feature = example_pb2.Example.FromString(record).features.feature

  def text(key):
    return feature[key].bytes_list.value[0].decode("utf-8")

  def number(key):
    return float(feature[key].float_list.value[0]) if key in feature else None

  return {"video_id": text("video_id"), "path": text("path"), "start": number("start"),
          "end": number("end"), "file": text("file"), "file_start": number("file_start"),
          "file_end": number("file_end"), "prompt_name": text("prompt_name"),
          "prompt": text("prompt"), "sample": int(feature["sample"].int64_list.value[0]),
          "caption": text("caption"), "log_likelihood": number("log_likelihood"),
          "checkpoint": text("checkpoint"), "decode": json.loads(text("decode"))}
