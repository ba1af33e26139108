"""Shared parsing for the annotation readers: timestamps, CSV/JSON/JSONL with line numbers, fields.

Every reader reports a malformed file as `AnnotationError(path, line, reason)`: the line for CSV
and JSONL (1-based, as an editor shows it), the entry index and key for JSON (whose parser gives
no line per entry). The helpers here raise those errors, so the readers stay a page each.

Conventions every reader follows (also in docs/datasets.md):
  * `VideoRecord.start/end` is a window *within the file the record names* (`path`, else the file
    named by `video_id`), never a window in some other file.
  * Clips cut from a YouTube video carry `extra["youtube_id"]`, `extra["source_start"]`,
    `extra["source_end"]`: the source video and the clip's window in it (seconds), so the resolver
    can fall back to a downloaded full video (`vidistill.data.annotations.paths`).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from typing import Any, Iterator, Mapping, Sequence

from vidistill import fs
from vidistill.data.records import AnnotationError, VideoRecord

_TIMESTAMP = re.compile(r"^(?:(?:(\d+):)?([0-5]?\d):)?(\d+(?:\.\d*)?)$")
_SPLIT_WORDS = (  # File-name words -> the split name records carry (first match wins).
    ("train", "train"), ("training", "train"), ("val", "val"), ("valid", "val"),
    ("validation", "val"), ("validate", "val"), ("test", "test"), ("public_test", "test"),
)
_YOUTUBE_URL = re.compile(r"(?:youtube\.com/(?:watch\?(?:.*&)?v=|embed/|shorts/)|youtu\.be/)"
                          r"([A-Za-z0-9_-]{11})")


def parse_timestamp(text: str) -> float:
  """Seconds from "HH:MM:SS.mmm" (InternVid), "MM:SS.mmm", "SS.mmm" or a bare number.

  Raises ValueError naming the text when it is not one of those forms.
  """
  match = _TIMESTAMP.match(text.strip())
  if not match:
    raise ValueError(f"timestamp {text!r} is not of the form HH:MM:SS.mmm")
  hours, minutes, seconds = match.groups()
  if minutes is not None and float(seconds) >= 60:
    raise ValueError(f"timestamp {text!r} has {seconds} seconds (must be < 60 after minutes)")
  return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def split_from_filename(path: str, default: str = "") -> str:
  """"train" / "val" / "test" from words in a file name (`vatex_training_v1.0.json` -> "train")."""
  words = re.split(r"[^a-z]+", os.path.basename(path).lower())
  for word, split in _SPLIT_WORDS:
    if word in words:
      return split
  return default


def youtube_id_from_url(url: str) -> str | None:
  """The 11-character id in a YouTube watch/embed/short URL, or None."""
  match = _YOUTUBE_URL.search(url)
  return match.group(1) if match else None


@contextlib.contextmanager
def open_text(path: str, encoding: str = "utf-8", newline: str | None = None) -> Iterator[Any]:
  """`fs.open(path)` for reading text; bytes that are not UTF-8 are an AnnotationError naming the
  line and byte offset (a manifest saved as Latin-1 or UTF-16), not a UnicodeDecodeError."""
  try:
    with fs.open(path, encoding=encoding, newline=newline) as f:
      yield f
  except UnicodeDecodeError:
    raise _not_utf8(path) from None


def _not_utf8(path: str) -> AnnotationError:
  # The decoder's offset is within the chunk it was given: decode the whole file to place it.
  with fs.open(path, "rb") as f:
    data = f.read()
  try:
    data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data.count(b"\n", 0, e.start) + 1
    return AnnotationError(path, line, f"not UTF-8 text: byte 0x{data[e.start]:02x} at byte "
                           f"offset {e.start} ({e.reason}); save the file as UTF-8")
  return AnnotationError(path, None, "not UTF-8 text; save the file as UTF-8")


def check_file(path: str) -> None:
  if not fs.isfile(path):
    raise AnnotationError(path, None, "no such annotation file; check the path (--annotations)")


def load_json(path: str) -> Any:
  """The parsed JSON document; a syntax error names the line and column."""
  check_file(path)
  with open_text(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise AnnotationError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None


def load_json_list(path: str) -> list[dict[str, Any]]:
  """A JSON list of objects (VATEX, MSRVTT-QA, ActivityNet-QA); errors name the entry index."""
  doc = load_json(path)
  if not isinstance(doc, list):
    raise AnnotationError(path, None, f"expected a JSON list of objects, got {type(doc).__name__}")
  _check_objects(doc, path, "entry")
  return doc


def load_json_lists(path: str, *keys: str) -> tuple[list[dict[str, Any]], ...]:
  """The lists of objects under `keys` of a JSON object (MSR-VTT "videos"/"sentences", COCO)."""
  doc = load_json(path)
  if not isinstance(doc, dict):
    raise AnnotationError(path, None, f"expected a JSON object with keys {list(keys)}, got "
                          f"{type(doc).__name__}")
  lists = tuple(get(doc, key, list, path) for key in keys)
  for key, values in zip(keys, lists):
    _check_objects(values, path, key)
  return lists


def _check_objects(values: list[Any], path: str, name: str) -> None:
  for i, value in enumerate(values):
    if not isinstance(value, dict):
      where = f"entry {i}" if name == "entry" else f"{name}[{i}]"
      raise AnnotationError(path, None, f"{where} is {type(value).__name__}, expected an object")


def iter_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
  """(line number, object) for each non-blank line of a JSON-lines file."""
  check_file(path)
  with open_text(path) as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError as e:
        raise AnnotationError(path, line_no, f"invalid JSON: {e.msg} (column {e.colno})") from None
      if not isinstance(obj, dict):
        raise AnnotationError(path, line_no, f"expected a JSON object, got {type(obj).__name__}")
      yield line_no, obj


def iter_csv(path: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
  """(line number, row dict) for each non-blank record of a CSV file with a header line.

  The header must hold the `required` columns. Quoted fields may span lines; the number is the line
  where the record starts. A pandas-written index column (empty header name) is kept under "".
  """
  check_file(path)
  # utf-8-sig: files saved by Excel start with a byte-order mark.
  with open_text(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f)
    header = None
    next_line = 1
    while True:
      start = next_line
      try:
        row = next(reader)
      except StopIteration:
        break
      except csv.Error as e:
        raise AnnotationError(path, start, f"unreadable CSV: {e}") from None
      next_line = reader.line_num + 1
      if not row or not any(cell.strip() for cell in row):
        continue
      if header is None:
        header = [name.strip() for name in row]
        missing = [c for c in required if c not in header]
        if missing:
          raise AnnotationError(path, start, f"header {header} lacks column(s) {missing}; expected "
                                f"columns {list(required)} (is this the right file and --format?)")
        continue
      if len(row) != len(header):
        raise AnnotationError(path, start, f"expected {len(header)} fields ({', '.join(header)}), "
                              f"got {len(row)}: {row!r}")
      yield start, dict(zip(header, row))
    if header is None:
      raise AnnotationError(path, None, "empty CSV file (no header line)")


def get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str,
        line: int | None = None, where: str = "") -> Any:
  """`obj[key]` checked against `kind`; a missing key or wrong type names the key and keys present.

  `where` prefixes the reason for JSON files without lines, e.g. "entry 12: ".
  """
  if key not in obj:
    raise AnnotationError(path, line, f"{where}missing key {key!r} (keys present: {sorted(obj)})")
  value = obj[key]
  if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
    names = "/".join(t.__name__ for t in _as_tuple(kind))
    raise AnnotationError(path, line, f"{where}key {key!r} is {type(value).__name__} "
                          f"{_short(value)}, expected {names}")
  return value


def get_text(obj: Mapping[str, Any], key: str, path: str, line: int | None = None,
             where: str = "", *, allow_empty: bool = False) -> str:
  """A string field, stripped; empty is an error unless `allow_empty`."""
  value = get(obj, key, str, path, line, where).strip()
  if not value and not allow_empty:
    raise AnnotationError(path, line, f"{where}key {key!r} is empty")
  return value


def get_texts(obj: Mapping[str, Any], key: str, path: str, line: int | None = None,
              where: str = "") -> tuple[str, ...]:
  """A list-of-strings field (captions), each stripped; the list may be empty."""
  values = get(obj, key, list, path, line, where)
  for i, value in enumerate(values):
    if not isinstance(value, str):
      raise AnnotationError(path, line, f"{where}{key}[{i}] is {type(value).__name__} "
                            f"{_short(value)}, expected a string")
  return tuple(v.strip() for v in values)


def to_float(text: str, column: str, path: str, line: int | None) -> float:
  try:
    return float(text)
  except ValueError:
    raise AnnotationError(path, line, f"column {column!r} is {text!r}, expected a number") from None


def to_int(text: str, column: str, path: str, line: int | None) -> int:
  try:
    return int(text.strip())
  except ValueError:
    raise AnnotationError(path, line,
                          f"column {column!r} is {text!r}, expected an integer") from None


def to_timestamp(text: str, column: str, path: str, line: int | None) -> float:
  try:
    return parse_timestamp(text)
  except ValueError as e:
    raise AnnotationError(path, line, f"column {column!r}: {e}") from None


def check_window(start: float, end: float, path: str, line: int | None, where: str = "") -> None:
  if start < 0 or end <= start:
    raise AnnotationError(path, line, f"{where}window [{start}, {end}] s is empty or negative")


def record_id(record: VideoRecord) -> str:
  """A key unique per record within a file: the clip or question id where videos repeat.

  InternVid/VideoCC records share a YouTube id across windows (`extra["clip_id"]`), QA records
  share a video across questions (`extra["question_id"]`); elsewhere the video id is unique.
  """
  return str(record.extra.get("clip_id") or record.extra.get("question_id") or record.video_id)


def clip_name(youtube_id: str, start: float, end: float) -> str:
  """`<id>_<start:06d>_<end:06d>`: the name Kinetics downloaders (and VATEX ids) give a clip."""
  return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
  return kind if isinstance(kind, tuple) else (kind,)


def _short(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."
