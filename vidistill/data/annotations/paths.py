"""From an annotation record to the video file on disk, and the window to decode in it.

Data sets name files after their ids, but the layouts people download differ: MSR-VTT ships
`video7020.mp4`; VATEX and Kinetics downloaders write the clip
`<youtube id>_<start:06d>_<end:06d>.mp4` (flat, in `<split>/`, or in `<split>/<label>/`), or keep
the full YouTube video `<youtube id>.mp4`; ActivityNet files are `v_<id>.mp4`. `resolve_video`
tries those names in that order and returns the first file that exists, with the window that is
right *for that file*: a clip is decoded whole, a full source video in the clip's window
(`extra["source_start"/"source_end"]`).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

from vidistill import fs
from vidistill.data.annotations import common
from vidistill.data.records import VideoRecord

DEFAULT_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")
_SHOWN = 12  # Tried paths listed in an error message; all are on the exception's `tried`.


@dataclasses.dataclass(frozen=True)
class ResolvedVideo:
  path: str
  window: tuple[float, float] | None  # Seconds within `path`; None = the whole file.


class VideoPathError(FileNotFoundError):
  """No file for a record: the message lists the paths tried (all of them in `tried`)."""

  def __init__(self, record: VideoRecord, video_root: str, tried: Sequence[str]):
    shown = ", ".join(tried[:_SHOWN]) + (f", ... ({len(tried) - _SHOWN} more)"
                                         if len(tried) > _SHOWN else "")
    super().__init__(
        f"no video file for record {record.video_id!r} (split {record.split!r}) under "
        f"{video_root!r}; tried {shown}. Point the video root at the folder holding the files "
        "(docs/datasets.md shows each data set's layout) or pass the files' extensions.")
    self.record, self.video_root, self.tried = record, video_root, list(tried)


def _own_window(record: VideoRecord) -> tuple[float, float] | None:
  if record.start is None and record.end is None:
    return None
  return (record.start or 0.0, record.end if record.end is not None else math.inf)


def _source_window(record: VideoRecord) -> tuple[float, float] | None:
  start, end = record.extra.get("source_start"), record.extra.get("source_end")
  return None if start is None or end is None else (float(start), float(end))


def _folders(record: VideoRecord) -> list[str]:
  """Sub-folders of the root that downloaders use: "", <split>, <label>, <split>/<label>."""
  labels = []
  if record.label:
    labels = list(dict.fromkeys([record.label, record.label.replace(" ", "_")]))
  splits = [record.split] if record.split else []
  folders = [""] + splits + labels + [os.path.join(s, l) for s in splits for l in labels]
  return list(dict.fromkeys(folders))


def _stems(record: VideoRecord) -> list[tuple[str, tuple[float, float] | None]]:
  """(file name without extension, window in that file), most specific first."""
  own = _own_window(record)
  stems = [(record.video_id, own)]
  stems += [(stem, own) for stem in record.extra.get("file_stems", ())]
  youtube_id, source = record.extra.get("youtube_id"), _source_window(record)
  if youtube_id and source is not None:
    stems.append((common.clip_name(youtube_id, *source), None))
    stems.append((youtube_id, source))
  seen, unique = set(), []
  for stem, window in stems:
    if stem not in seen:
      seen.add(stem)
      unique.append((stem, window))
  return unique


def _with_extensions(base: str, extensions: Sequence[str]) -> list[str]:
  has_extension = os.path.splitext(base)[1] != ""
  return ([base] if has_extension else []) + [base + ext for ext in extensions]


def resolve_video(record: VideoRecord, video_root: str,
                  extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> ResolvedVideo:
  """The record's video file and the window (seconds) to decode in it.

  Tried in order: the record's `path` (absolute, or relative to `video_root`); then files named
  after `video_id`, `extra["file_stems"]`, the Kinetics-style clip name of (`youtube_id`, source
  window), and last the full source video `youtube_id`, each in the root and its <split>, <label>
  and <split>/<label> sub-folders. Raises VideoPathError listing every path tried.
  """
  tried: list[str] = []
  # A web page (InternVid's YouTube URLs) is not a file; gs://... and other file systems are.
  if record.path and fs.scheme(record.path) not in ("http", "https"):
    whole = os.path.isabs(record.path) or fs.is_remote(record.path)
    base = record.path if whole else os.path.join(video_root, record.path)
    # The path as given first, whatever its name: a listed file that is not a video is reported
    # as such when decoded, not as missing.
    for candidate in dict.fromkeys([base] + _with_extensions(base, extensions)):
      tried.append(candidate)
      if fs.isfile(candidate):
        return ResolvedVideo(candidate, _own_window(record))
  folders = [(f, fs.isdir(os.path.join(video_root, f))) for f in _folders(record)]
  for stem, window in _stems(record):  # Names outermost: a clip anywhere beats the full video.
    for folder, present in folders:  # Absent folders cost one stat, not one per file name.
      for candidate in _with_extensions(os.path.join(video_root, folder, stem), extensions):
        tried.append(candidate)
        if present and fs.isfile(candidate):
          return ResolvedVideo(candidate, window)
  raise VideoPathError(record, video_root, tried)


def resolve_video_path(record: VideoRecord, video_root: str,
                       extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> str:
  """The record's video file (see `resolve_video`, which also gives the window to decode)."""
  return resolve_video(record, video_root, extensions).path
