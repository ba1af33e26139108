"""The captioning job's input: which videos, in which order, with which window.

`--input` is one of
  * a manifest file: our simple CSV / JSONL (`id`, `path`, `start`, `end`; `path` or `id` is
    required), InternVid JSONL, VideoCC CSV, or any format in `vidistill.data.annotations.READERS`;
  * a glob of video files (`videos/**/*.mp4`) or a folder of them;
  * example shards whose frames are already decoded (`shards/pool-*.tfrecord`, `*.array_record`).
The order is the manifest's line order (sorted paths for a glob, file then position for shards):
the work units are cut from it, so the same input always gives the same units.

Manifests come from the web, so nothing in them is trusted: a remote scheme (`gs://`, `http://`,
...) that `allowed_schemes` does not list is refused naming the row, and ids are only ever written
*inside* output files, never used to build a file name.

A manifest file, a folder or glob of videos and shard files may be remote (`gs://...`, allowed by
`allowed_schemes`): they are read and listed through `vidistill.fs` (tf.io.gfile), and remote
paths are kept as given (never made absolute).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Iterable, Sequence

from vidistill import fs
from vidistill.data import annotations
from vidistill.data.annotations import common
from vidistill.data.annotations.common import open_text
from vidistill.data.records import AnnotationError, VideoRecord

MANIFEST_FORMATS = ("auto", "simple")  # ... plus every name in annotations.READERS.
INPUT_KINDS = ("auto", "manifest", "videos", "shards")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
SHARD_SUFFIXES = (".tfrecord", ".array_record")
_SIMPLE_KEYS = ("id", "path", "start", "end")


class ManifestError(AnnotationError):
  """A bad manifest, row or input spec; the message names the file and row."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One video (or window of one) to caption.

  `key` is unique within the manifest and is the `video_id` of every output row: the clip id for
  web clips that share a source video (InternVid, VideoCC), else the record's id.
  """
  key: str
  record: VideoRecord  # Where the frames are: `path` / `video_id` + window, or shard + offset.
  where: str           # "manifest.jsonl:12" / "pool.csv entry 7" / "shard.tfrecord#3".

  @property
  def window(self) -> tuple[float, float] | None:
    if self.record.start is None and self.record.end is None:
      return None
    return (self.record.start or 0.0, self.record.end if self.record.end is not None else
            float("inf"))


@dataclasses.dataclass(frozen=True)
class Manifest:
  kind: str                    # "videos" (decode files) or "shards" (frames stored in shards).
  entries: tuple[Entry, ...]
  source: str                  # The --input as given, for logs and units.jsonl.


scheme_of = fs.scheme  # "gs" for "gs://b/x.mp4"; None for a local path.


def check_scheme(path: str | None, allowed: Sequence[str], where: str) -> None:
  """Raises ManifestError naming `where` when `path` has a scheme that `allowed` does not list."""
  scheme = scheme_of(path)
  if scheme is not None and scheme not in {s.lower() for s in allowed}:
    raise ManifestError(where, None, f"path {path!r} uses the scheme {scheme!r}, which "
                        f"config.allowed_schemes={tuple(allowed)!r} does not allow; add it there "
                        "if the job may read it, or download the videos and list local paths")


def load_manifest(spec: str, *, kind: str = "auto", manifest_format: str = "auto",
                  video_root: str = "", allowed_schemes: Sequence[str] = (),
                  on_duplicate: str = "error") -> Manifest:
  """Parses `--input` into an ordered, checked list of entries.

  Args:
    spec: a manifest file, a glob or folder of videos, or a glob / list (comma-separated) of shards.
    kind: "auto" decides from `spec` (.tfrecord / .array_record in the names -> shards, a glob or
      folder -> videos, else a manifest file).
    manifest_format: "auto" (InternVid JSONL by its keys, VideoCC CSV when headerless, else
      simple), "simple", or a name in `vidistill.data.annotations.READERS`.
    video_root: relative paths in a manifest and a relative glob / folder of videos resolve
      against it (the manifest and shard files themselves: against the working directory).
    allowed_schemes: remote schemes rows may use ("gs", "http", ...); others are refused.
    on_duplicate: "error" (a repeated id is a ManifestError naming both rows) or "skip" (keep the
      first; later ones are dropped).
  """
  check_scheme(video_root, allowed_schemes, "video_root")
  check_scheme(spec, allowed_schemes, "--input")
  if kind not in INPUT_KINDS:
    raise ManifestError("--input", None, f"input kind {kind!r} is not one of {INPUT_KINDS}")
  if on_duplicate not in ("error", "skip"):
    raise ManifestError("--input", None, f"on_duplicate={on_duplicate!r}: use 'error' or 'skip'")
  if kind == "auto":
    kind = _guess_kind(spec, video_root)
  if kind == "shards":
    entries = _shard_entries(_expand_shards(spec))
  elif kind == "videos":
    entries = _video_file_entries(spec, video_root)
  else:
    entries = _manifest_entries(spec, manifest_format)
  for entry in entries:
    check_scheme(entry.record.path, allowed_schemes, entry.where)
  return Manifest("shards" if kind == "shards" else "videos",
                  _deduplicate(entries, on_duplicate), spec)


def _is_shard(path: str) -> bool:
  name = os.path.basename(path)
  return any(s in name for s in SHARD_SUFFIXES)


def _expand_shards(spec: str) -> list[str]:
  """Shard files from comma-separated paths or globs (relative to the working directory)."""
  paths = []
  for part in (p.strip() for p in spec.split(",") if p.strip()):
    if not glob.has_magic(part):
      matches = [part]
    elif fs.is_remote(part):
      matches = sorted(fs.glob(part))  # No `**` recursion remotely.
    else:
      matches = sorted(glob.glob(part, recursive=True))
    if not matches:
      raise ManifestError(part, None, "the glob matches no shard files; check --input")
    paths += matches
  return paths


def _guess_kind(spec: str, video_root: str) -> str:
  parts = [p.strip() for p in spec.split(",") if p.strip()]
  shard_parts = [p for p in parts if _is_shard(p)]
  if shard_parts:
    if len(shard_parts) != len(parts):
      raise ManifestError(spec, None, "the input mixes example shards and other files")
    return "shards"
  if glob.has_magic(spec) or fs.isdir(spec):
    return "videos"
  if not fs.is_remote(spec) and fs.isdir(os.path.join(video_root, spec)):
    return "videos"
  return "manifest"


def _video_file_entries(spec: str, video_root: str) -> list[Entry]:
  """A folder (every video file under it) or a glob; ids are paths relative to the glob's base."""
  full = (spec if os.path.isabs(spec) or fs.is_remote(spec) or not video_root
          else os.path.join(video_root, spec))  # A remote root keeps a relative spec remote.
  remote = fs.is_remote(full)
  if fs.isdir(full):
    base = full
    paths = [p for p in sorted(fs.files_under(full)) if p.lower().endswith(VIDEO_EXTENSIONS)]
  elif remote:
    if "**" in full:
      raise ManifestError(spec, None, "a remote glob cannot recurse with '**'; give the folder "
                          "instead (every video file under it is listed)")
    base = _glob_base(full)
    # A stat per match would be one request each on GCS: names with a video extension are taken
    # as files, only other matches (maybe folders) are checked.
    paths = [p for p in sorted(fs.glob(full))
             if p.lower().endswith(VIDEO_EXTENSIONS) or fs.isfile(p)]
  else:
    base = _glob_base(full)
    paths = [p for p in sorted(glob.glob(full, recursive=True)) if os.path.isfile(p)]
  if not paths:
    raise ManifestError(spec, None, "no video files match; check --input and --video_root")
  entries = []
  for path in paths:
    relative = (path[len(base):].lstrip("/") if remote and path.startswith(base)
                else os.path.relpath(path, base))
    key = os.path.splitext(relative)[0].replace(os.sep, "/")
    entries.append(Entry(key, VideoRecord(video_id=key, path=fs.abspath(path)), path))
  return entries


def _glob_base(pattern: str) -> str:
  parts = []
  for part in pattern.split(os.sep):
    if glob.has_magic(part):
      break
    parts.append(part)
  return os.sep.join(parts) or "."


def _shard_entries(paths: Iterable[str]) -> list[Entry]:
  from vidistill.data import shards  # pylint: disable=g-import-not-at-top  (TensorFlow)
  entries = []
  for path in paths:
    if not fs.isfile(path):
      raise ManifestError(path, None, "no such shard file; check --input")
    for offset, example in enumerate(shards.read_shards([path])):
      key = str(example.get("id", ""))
      where = f"{path}#{offset}"
      if not key:
        raise ManifestError(where, None, "example has no 'id'")
      start, end = example.get("start"), example.get("end")
      record = VideoRecord(video_id=key, path=path, start=None if start is None else float(start),
                           end=None if end is None else float(end), extra={"offset": offset})
      entries.append(Entry(key, record, where))
  return entries


def _manifest_entries(path: str, manifest_format: str) -> list[Entry]:
  if not fs.isfile(path):
    raise ManifestError(path, None, "no such manifest file; check --input")
  if manifest_format == "auto":
    manifest_format = _guess_format(path)
  if manifest_format != "simple" and manifest_format not in annotations.READERS:
    raise ManifestError(path, None, f"manifest_format {manifest_format!r} is not 'auto', 'simple' "
                        f"or one of {sorted(annotations.READERS)}")
  try:
    if manifest_format == "simple":
      return _simple_entries(path)
    records = annotations.READERS[manifest_format](path)
  except ManifestError:
    raise
  except AnnotationError as e:  # The readers' own error: same message, the job's one type.
    raise ManifestError(e.path, e.line, e.reason) from None
  return [Entry(str(r.extra.get("clip_id") or r.video_id), r, f"{path} entry {i + 1}")
          for i, r in enumerate(records)]


def _first_line(path: str) -> str:
  with open_text(path, encoding="utf-8-sig") as f:
    for line in f:
      if line.strip():
        return line.strip()
  raise ManifestError(path, None, "the manifest is empty")


def _guess_format(path: str) -> str:
  first = _first_line(path)
  if first.startswith("{"):
    try:
      keys = json.loads(first)
    except json.JSONDecodeError as e:
      raise ManifestError(path, 1, f"invalid JSON: {e.msg}") from None
    return "internvid" if isinstance(keys, dict) and "YoutubeID" in keys else "simple"
  header = [c.strip().strip('"').lower() for c in first.split(",")]
  if "path" in header or "id" in header:
    return "simple"
  if len(header) >= 4 and header[1].isdigit():
    return "videocc"
  raise ManifestError(path, 1, f"cannot tell the manifest format from the first line {first!r}; "
                      "a simple manifest has a header with 'path' and/or 'id' (and optional "
                      "'start', 'end'); or set config.manifest_format")


def _simple_entries(path: str) -> list[Entry]:
  """Our own format: CSV with a header, or JSONL; keys id / path / start / end (seconds or
  HH:MM:SS.mmm). An id defaults to the path (plus the window, so windows of one file differ)."""
  if _first_line(path).startswith("{"):
    rows = ((line, {k: v for k, v in obj.items()}) for line, obj in common.iter_jsonl(path))
  else:
    rows = common.iter_csv(path, required=())
  entries = []
  for line, row in rows:
    where = f"{path}:{line}"
    values = {k: row.get(k) for k in _SIMPLE_KEYS}
    for key, value in values.items():
      if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ManifestError(path, line, f"key {key!r} is {value!r}, expected text or a number")
    video_id = str(values["id"]).strip() if values["id"] not in (None, "") else ""
    video_path = str(values["path"]).strip() if values["path"] not in (None, "") else None
    if not video_id and not video_path:
      raise ManifestError(path, line, f"row has neither 'id' nor 'path' (keys: {sorted(row)})")
    start = _seconds(values["start"], "start", path, line)
    end = _seconds(values["end"], "end", path, line)
    if start is not None and end is not None and not 0 <= start < end:
      raise ManifestError(path, line, f"window [{start}, {end}] s is empty or negative")
    if not video_id:
      video_id = video_path if start is None and end is None else (
          f"{video_path}_{start or 0.0:.3f}_{'end' if end is None else f'{end:.3f}'}")
    entries.append(Entry(video_id, VideoRecord(video_id=video_id, path=video_path, start=start,
                                               end=end), where))
  return entries


def _seconds(value, column: str, path: str, line: int) -> float | None:
  if value is None or value == "":
    return None
  if isinstance(value, (int, float)):
    return float(value)
  return common.to_timestamp(value, column, path, line)


def _deduplicate(entries: Sequence[Entry], on_duplicate: str) -> tuple[Entry, ...]:
  first: dict[str, Entry] = {}
  kept = []
  for entry in entries:
    seen = first.get(entry.key)
    if seen is None:
      first[entry.key] = entry
      kept.append(entry)
    elif on_duplicate == "error":
      raise ManifestError(entry.where, None, f"id {entry.key!r} repeats {seen.where}; every video "
                          "is captioned once, so ids must be unique (config.on_duplicate='skip' "
                          "keeps the first)")
  return tuple(kept)
