"""A corpus of clips as shard files: tf.train.Example records in TFRecord or ArrayRecord files.

An example is a flat dict: `"id"` (str) plus any of
  str | list[str]            text (captions, alt-text, questions, ...),
  bytes | list[bytes]        e.g. `video_bytes`, an encoded mp4,
  int | float | lists of them  scalars such as the window `start` / `end` (float32 on disk),
  np.ndarray                 e.g. `frames`, `uint8 [T, H, W, 3]`: raw bytes (exact) by default,
                             or one PNG per frame with `frames_encoding="png"`.
Every record also stores its schema (key -> kind, a small JSON string under `_schema`), so a record
reads back into the same Python types, and `as_tf_dataset` builds its parsing spec from the first
record. All examples of one `write_shards` call must share keys and kinds.

Shards are named `prefix-00000-of-00004.tfrecord` (or `.array_record`); example i goes to shard
i % num_shards. Each host reads its own part with `read_shards(..., shard_index, shard_count)`:
whole files when there are at least as many files as hosts, else every shard_count-th record.
"""
from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, Union

import numpy as np

if TYPE_CHECKING:
  import tensorflow as tf

FORMATS = {"tfrecord": ".tfrecord", "arrayrecord": ".array_record"}
SCHEMA_KEY = "_schema"
_ARRAY_RECORD_OPTIONS = "group_size:1"  # One record per chunk: cheap random access (Grain style).
_ARRAY_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32",
                 "float64")  # The dtypes tf.io.decode_raw reads back.

Paths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


class ShardError(ValueError):
  """A shard file or an example is unusable; the message names the file or example and the fix."""


def _tf():
  from vidistill import tf_quiet  # pylint: disable=g-import-not-at-top  (10 s import, when needed)
  tf = tf_quiet.import_tensorflow()
  # tf_record_iterator (below) is a tf.compat.v1 API and logs a deprecation notice on first use.
  tf.get_logger().setLevel("ERROR")
  return tf


# ------------------------------------------------------------------------------------------------
# Examples <-> tf.train.Example bytes.

def _kind(key: str, value: Any, frames_encoding: str, where: str) -> str:
  if isinstance(value, str):
    return "str"
  if isinstance(value, bytes):
    return "bytes"
  if isinstance(value, (bool, int, np.integer)):
    return "int"
  if isinstance(value, (float, np.floating)):
    return "float"
  if isinstance(value, np.ndarray):
    if value.dtype.name not in _ARRAY_DTYPES:
      raise ShardError(f"{where}: array {key!r} has dtype {value.dtype}; use one of "
                       f"{_ARRAY_DTYPES}")
    if frames_encoding == "png" and value.dtype == np.uint8 and value.ndim == 4 and (
        value.shape[-1] in (1, 3, 4)):
      return "png"
    return f"raw:{value.dtype.name}"
  if isinstance(value, (list, tuple)):
    kinds = {_kind(key, v, frames_encoding, where) for v in value}
    if not kinds:  # Holds no type: takes the first example's list kind (text by default).
      return "empty_list"
    if len(kinds) == 1 and next(iter(kinds)) in ("str", "bytes", "int", "float"):
      return next(iter(kinds)) + "_list"
  raise ShardError(f"{where}: value of {key!r} has unsupported type {type(value).__name__}; use "
                   "str, bytes, int, float, a list of one of them, or a numpy array (drop None "
                   "values, or fill them, e.g. float('nan'))")


def _png_frames(array: np.ndarray) -> list[bytes]:
  from PIL import Image  # pylint: disable=g-import-not-at-top  (only for the png option)
  mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[-1]]
  out = []
  for frame in array:
    buffer = io.BytesIO()
    Image.fromarray(frame[..., 0] if mode == "L" else frame, mode).save(buffer, format="PNG")
    out.append(buffer.getvalue())
  return out


def _schema(example: dict, frames_encoding: str, where: str) -> dict[str, str]:
  if not isinstance(example, dict) or not isinstance(example.get("id"), str) or not example["id"]:
    raise ShardError(f"{where}: an example must be a dict with a non-empty str 'id'")
  bad = [k for k in example if not isinstance(k, str) or k.startswith("_") or "/" in k]
  if bad:
    raise ShardError(f"{where}: keys {bad} are reserved (leading '_' or '/'); rename them")
  return {k: _kind(k, v, frames_encoding, where) for k, v in sorted(example.items())}


def serialize_example(example: dict, *, frames_encoding: str = "raw",
                      schema: dict[str, str] | None = None) -> bytes:
  """One example dict -> serialized tf.train.Example bytes (the record stored in both formats)."""
  tf = _tf()
  schema = schema or _schema(example, frames_encoding, f"example {example.get('id')!r}")
  schema = {k: "str_list" if v == "empty_list" else v for k, v in schema.items()}
  features = {SCHEMA_KEY: _bytes_feature(tf, [json.dumps(schema).encode()])}
  for key, kind in schema.items():
    value = example[key]
    if kind in ("str", "bytes", "str_list", "bytes_list"):
      items = value if kind.endswith("_list") else [value]
      features[key] = _bytes_feature(tf, [v.encode() if isinstance(v, str) else v for v in items])
    elif kind in ("int", "int_list"):
      features[key] = tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(v) for v in (value if kind == "int_list" else [value])]))
    elif kind in ("float", "float_list"):
      features[key] = tf.train.Feature(float_list=tf.train.FloatList(
          value=[float(v) for v in (value if kind == "float_list" else [value])]))
    else:  # An array: its bytes (little-endian, C order) or PNG frames, and its shape.
      array = np.asarray(value)
      if kind == "png":
        features[key] = _bytes_feature(tf, _png_frames(array))
      else:
        features[key] = _bytes_feature(tf, [array.astype(array.dtype.newbyteorder("<")).tobytes()])
      features[f"{key}/shape"] = tf.train.Feature(int64_list=tf.train.Int64List(value=array.shape))
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def _bytes_feature(tf, values: list[bytes]):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def parse_example(record: bytes, *, where: str = "record") -> dict[str, Any]:
  """Serialized tf.train.Example bytes -> the example dict, with the types it was written with."""
  tf = _tf()
  try:
    feature = tf.train.Example.FromString(record).features.feature
    schema = json.loads(feature[SCHEMA_KEY].bytes_list.value[0])
  except Exception as e:  # pylint: disable=broad-except  (protobuf / JSON / missing key)
    raise ShardError(f"{where}: not a vidistill example (no readable {SCHEMA_KEY!r} feature); was "
                     "it written by vidistill.data.shards.write_shards?") from e
  out: dict[str, Any] = {}
  for key, kind in schema.items():
    f = feature[key]
    if kind in ("str", "str_list"):
      values = [v.decode() for v in f.bytes_list.value]
    elif kind in ("bytes", "bytes_list"):
      values = list(f.bytes_list.value)
    elif kind in ("int", "int_list"):
      values = list(f.int64_list.value)
    elif kind in ("float", "float_list"):
      values = list(f.float_list.value)
    else:
      shape = tuple(feature[f"{key}/shape"].int64_list.value)
      out[key] = _decode_array(kind, f.bytes_list.value, shape)
      continue
    out[key] = values if kind.endswith("_list") else values[0]
  return out


def _decode_array(kind: str, values: Sequence[bytes], shape: tuple[int, ...]) -> np.ndarray:
  if kind == "png":
    from PIL import Image  # pylint: disable=g-import-not-at-top
    frames = [np.asarray(Image.open(io.BytesIO(v))) for v in values]
    return np.stack(frames).reshape(shape) if frames else np.zeros(shape, np.uint8)
  dtype = np.dtype(kind.split(":", 1)[1]).newbyteorder("<")
  return np.frombuffer(values[0], dtype).astype(dtype.newbyteorder("=")).reshape(shape)


# ------------------------------------------------------------------------------------------------
# Writing.

def shard_paths(path_prefix: str, num_shards: int,
                format: str = "tfrecord") -> list[str]:  # pylint: disable=redefined-builtin
  """The file names `write_shards` produces: `prefix-00000-of-00004.tfrecord`, ..."""
  if format not in FORMATS:
    raise ShardError(f"unknown shard format {format!r}; use one of {sorted(FORMATS)}")
  return [f"{path_prefix}-{i:05d}-of-{num_shards:05d}{FORMATS[format]}" for i in range(num_shards)]


class _ArrayRecordWriter:
  def __init__(self, path: str):
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    self._writer = array_record_module.ArrayRecordWriter(path, _ARRAY_RECORD_OPTIONS)
    if not self._writer.ok():
      raise ShardError(f"{path}: cannot open for writing; check the directory exists and is "
                       "writable")

  def write(self, record: bytes) -> None:
    self._writer.write(record)

  def close(self) -> None:
    self._writer.close()


def write_shards(examples: Iterable[dict], path_prefix: str | os.PathLike, num_shards: int,
                 format: str = "tfrecord",  # pylint: disable=redefined-builtin
                 *, frames_encoding: str = "raw") -> list[str]:
  """Writes examples round-robin into `num_shards` files; returns their paths.

  Every shard is written under a temporary name and renamed once all are complete, so a crash
  never leaves a partial shard under a final name. `frames_encoding`: "raw" (exact) or "png"
  (lossless, smaller for flat images) for uint8 [T, H, W, C] arrays. All shards are open at once:
  keep num_shards under the open-file limit (ulimit -n).
  """
  if num_shards < 1:
    raise ShardError(f"num_shards must be >= 1, got {num_shards}")
  if frames_encoding not in ("raw", "png"):
    raise ShardError(f"frames_encoding must be 'raw' or 'png', got {frames_encoding!r}")
  paths = shard_paths(os.fspath(path_prefix), num_shards, format)
  tf = _tf()
  parent = os.path.dirname(paths[0])
  if parent:
    tf.io.gfile.makedirs(parent)
  temps = [f"{p}.incomplete-{os.getpid()}" for p in paths]
  writers: list[Any] = []
  try:
    for temp in temps:
      writers.append(tf.io.TFRecordWriter(temp) if format == "tfrecord"
                     else _ArrayRecordWriter(temp))
    first: dict[str, str] | None = None
    for n, example in enumerate(examples):
      where = f"example {n} (id {example.get('id') if isinstance(example, dict) else None!r})"
      schema = _schema(example, frames_encoding, where)
      first = first or schema
      _check_same_schema(first, schema, where)
      writers[n % num_shards].write(serialize_example(
          example, frames_encoding=frames_encoding, schema=_fill_empty_lists(first, schema)))
    for writer in writers:
      writer.close()
    writers = []
    for temp, path in zip(temps, paths):
      tf.io.gfile.rename(temp, path, overwrite=True)
  except BaseException:
    for writer in writers:
      writer.close()
    for temp in temps:
      if tf.io.gfile.exists(temp):
        tf.io.gfile.remove(temp)
    raise
  return paths


def _check_same_schema(first: dict[str, str], schema: dict[str, str], where: str) -> None:
  if set(first) != set(schema):
    raise ShardError(f"{where}: keys {sorted(schema)} differ from the first example's "
                     f"{sorted(first)}; every example needs the same keys")
  for key, kind in schema.items():
    if kind == "empty_list" and first[key].endswith("_list"):
      continue
    if first[key] == "empty_list" and kind == "str_list":  # Empty lists are written as text.
      continue
    if kind != first[key]:
      hint = " (its list there is empty; put a non-empty one first)" if first[key] == (
          "empty_list") else ""
      raise ShardError(f"{where}: {key!r} is {kind} but {first[key]} in the first example{hint}")


def _fill_empty_lists(first: dict[str, str], schema: dict[str, str]) -> dict[str, str]:
  """An empty list takes the list kind of the first example, so the tf.data spec holds for all."""
  return {k: (first[k] if first[k] != "empty_list" else "str_list") if v == "empty_list" else v
          for k, v in schema.items()}


# ------------------------------------------------------------------------------------------------
# Reading.

def _format_of(path: str) -> str:
  for format_, ext in FORMATS.items():
    if path.endswith(ext):
      return format_
  raise ShardError(f"{path}: not a shard file; names end in {sorted(FORMATS.values())}")


def expand_paths(pattern_or_paths: Paths) -> list[str]:
  """Shard files from a glob, a list of paths/globs, or a prefix given to `write_shards`."""
  tf = _tf()
  items = ([pattern_or_paths] if isinstance(pattern_or_paths, (str, os.PathLike))
           else list(pattern_or_paths))
  paths: list[str] = []
  for item in map(os.fspath, items):
    if any(c in item for c in "*?["):
      matches = sorted(tf.io.gfile.glob(item))
    elif tf.io.gfile.exists(item):
      matches = [item]
    else:  # A prefix as passed to write_shards.
      matches = sorted(tf.io.gfile.glob(f"{item}-*-of-*"))
      matches = [m for m in matches if m.endswith(tuple(FORMATS.values()))]
    if not matches:
      raise ShardError(f"{item}: no shard files match; check the path, glob or prefix")
    paths.extend(matches)
  for path in paths:
    _format_of(path)
  return paths


def _records(path: str, keep: slice | None = None, offset: int = 0) -> Iterator[bytes]:
  """Raw records of one file; with `keep` = slice(start, None, step), only records whose global
  index (offset + local index) is in it."""
  def kept(i: int) -> bool:
    return keep is None or ((offset + i - keep.start) % keep.step == 0)

  if _format_of(path) == "arrayrecord":
    reader = _array_record_reader(path)
    try:
      wanted = [i for i in range(reader.num_records()) if kept(i)]
      for begin in range(0, len(wanted), 64):  # Batched reads, bounded memory.
        try:
          batch = reader.read(wanted[begin:begin + 64])
        except Exception as e:  # pylint: disable=broad-except  (riegeli reports RuntimeError)
          raise ShardError(f"{path}: cannot read records {wanted[begin]}+ ({e}); the file is "
                           "damaged") from e
        yield from batch
    finally:
      reader.close()
    return
  tf = _tf()
  try:
    # The record iterator runs the same C++ reader as tf.data without building a dataset per
    # file (100 ms each), which dominates reading many small shards.
    for i, record in enumerate(tf.compat.v1.io.tf_record_iterator(path)):
      if kept(i):
        yield record
  except tf.errors.OpError as e:
    raise ShardError(f"{path}: cannot read TFRecords ({e.message.splitlines()[0]}); the file is "
                     "damaged or not a TFRecord file") from e


def _array_record_reader(path: str):
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  reader = array_record_module.ArrayRecordReader(path)
  if not reader.ok():  # (close() would raise the same complaint again.)
    raise ShardError(f"{path}: not a readable ArrayRecord file; the file is damaged or of "
                     "another format")
  return reader


def count_examples(pattern_or_paths: Paths) -> int:
  """Number of examples in the shard files (ArrayRecord: from the index; TFRecord: a scan)."""
  total = 0
  for path in expand_paths(pattern_or_paths):
    if _format_of(path) == "arrayrecord":
      reader = _array_record_reader(path)
      total += reader.num_records()
      reader.close()
    else:
      total += sum(1 for _ in _records(path))
  return total


def _host_plan(paths: list[str], shard_index: int,
               shard_count: int) -> list[tuple[str, slice | None, int]]:
  """(path, records to keep, global index of its first record) for one host."""
  if not 0 <= shard_index < shard_count:
    raise ShardError(f"shard_index must be in [0, {shard_count}), got {shard_index}")
  if shard_count == 1:
    return [(p, None, 0) for p in paths]
  if len(paths) >= shard_count:
    return [(p, None, 0) for p in paths[shard_index::shard_count]]
  plan, offset = [], 0
  for path in paths:
    plan.append((path, slice(shard_index, None, shard_count), offset))
    offset += count_examples(path)
  return plan


def _host_records(pattern_or_paths: Paths, shard_index: int,
                  shard_count: int) -> Iterator[tuple[str, bytes]]:
  for path, keep, offset in _host_plan(expand_paths(pattern_or_paths), shard_index, shard_count):
    for record in _records(path, keep, offset):
      yield path, record


def read_shards(pattern_or_paths: Paths, *, shard_index: int = 0,
                shard_count: int = 1) -> Iterator[dict[str, Any]]:
  """Yields this host's examples as dicts, files in order and records in order within a file.

  Hosts 0..shard_count-1 together read every example exactly once.
  """
  for path, record in _host_records(pattern_or_paths, shard_index, shard_count):
    yield parse_example(record, where=path)


# ------------------------------------------------------------------------------------------------
# tf.data.

def as_tf_dataset(pattern_or_paths: Paths,
                  format: str | None = None,  # pylint: disable=redefined-builtin
                  *, shard_index: int = 0, shard_count: int = 1) -> tf.data.Dataset:
  """A tf.data.Dataset of parsed example dicts, in the order `read_shards` yields them.

  Text and bytes become tf.string (lists: [N] tf.string), ints int64, floats float32, arrays their
  dtype and shape (frames: uint8 [T, H, W, 3]). `format` is checked against the files when given.
  """
  tf = _tf()
  paths = expand_paths(pattern_or_paths)
  if format is not None and {_format_of(p) for p in paths} != {format}:
    raise ShardError(f"format {format!r} does not match the files {paths[:3]}...")
  scan = _host_records(paths, 0, 1)
  first = next(scan, None)
  scan.close()
  if first is None:
    raise ShardError(f"{paths[0]}...: hold no examples, so the feature spec cannot be read")
  schema = json.loads(tf.train.Example.FromString(first[1]).features.feature[SCHEMA_KEY]
                      .bytes_list.value[0])
  plan = _host_plan(paths, shard_index, shard_count)
  if all(_format_of(p) == "tfrecord" for p in paths):
    records = tf.data.TFRecordDataset([p for p, _, _ in plan])
    if plan[0][1] is not None:  # Record-level split: the global stream, every shard_count-th.
      records = records.shard(shard_count, shard_index)
  else:
    def generate():
      for path, keep, offset in plan:
        yield from _records(path, keep, offset)
    records = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec([], tf.string))
  return records.map(lambda r: _parse_tf(tf, r, schema), num_parallel_calls=tf.data.AUTOTUNE)


def _parse_tf(tf, record, schema: dict[str, str]) -> dict[str, Any]:
  spec = {}
  for key, kind in schema.items():
    base = kind[:-len("_list")] if kind.endswith("_list") else kind
    dtype = {"int": tf.int64, "float": tf.float32}.get(base, tf.string)
    if kind.endswith("_list") or kind == "png":
      spec[key] = tf.io.VarLenFeature(dtype)
    else:
      spec[key] = tf.io.FixedLenFeature([], dtype)
    if kind == "png" or kind.startswith("raw:"):
      spec[f"{key}/shape"] = tf.io.VarLenFeature(tf.int64)
  parsed = tf.io.parse_single_example(record, spec)
  out = {}
  for key, kind in schema.items():
    value = parsed[key]
    if kind == "png" or kind.startswith("raw:"):
      shape = tf.sparse.to_dense(parsed[f"{key}/shape"])
      if kind == "png":
        frames = tf.sparse.to_dense(value)
        value = tf.map_fn(lambda png: tf.io.decode_png(png, channels=0), frames,
                          fn_output_signature=tf.uint8)
        value = tf.reshape(value, shape)
      else:
        value = tf.reshape(tf.io.decode_raw(value, tf.as_dtype(kind.split(":", 1)[1]),
                                            little_endian=True), shape)
    elif kind.endswith("_list"):
      value = tf.sparse.to_dense(value)
    out[key] = value
  return out
