"""Frames for a manifest entry: decoded from a video file, or read from example shards.

Runs on the prefetch threads (`data/prefetch.py`): every loader here either returns
`Loaded` frames (and the file and window they came from) or raises, and the job turns the
exception into a failure row.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import urllib.parse
import urllib.request
from typing import Any, BinaryIO, Iterator, Sequence

import numpy as np

from vidistill import fs
from vidistill.caption.manifest import Entry, scheme_of
from vidistill.data import annotations
from vidistill.data import video_io

# How a failure is filed in the summary, by exception class name (anything else: "other").
FAILURE_KINDS = {
    "VideoNotFoundError": "missing", "VideoPathError": "missing", "FileNotFoundError": "missing",
    "CorruptVideoError": "corrupt", "NotAVideoError": "not_video", "EmptyVideoError": "empty", "NoVideoStreamError": "no_video",
    "WindowError": "window", "FrameShapeError": "shape", "PermissionError": "unreadable",
    "IsADirectoryError": "unreadable", "URLError": "remote", "HTTPError": "remote",
    "TimeoutError": "remote", "ShardChangedError": "changed", "ShardError": "corrupt",
}


@dataclasses.dataclass(frozen=True)
class Loaded:
  frames: np.ndarray                   # uint8 [T, R, R, 3].
  file: str                            # What was decoded: a local path, a URL, or "shard#offset".
  window: tuple[float, float | None] | None  # Seconds within `file`; None = all of it.


def _window(window: tuple[float, float] | None) -> tuple[float, float | None] | None:
  """JSON-safe: an open end (inf) is None."""
  if window is None:
    return None
  return (float(window[0]), None if math.isinf(window[1]) else float(window[1]))


class FrameShapeError(ValueError):
  """Stored frames have another size than the job's resolution, or none at all."""


class ShardChangedError(ValueError):
  """A shard no longer holds the example the unit plan lists at that position."""


def failure_kind(error: BaseException) -> str:
  return FAILURE_KINDS.get(type(error).__name__, "other")


@contextlib.contextmanager
def _open_remote(url: str, timeout_s: float) -> Iterator[str | BinaryIO]:
  """A local path or a seekable file object for an allowed remote URL."""
  scheme = scheme_of(url)
  if scheme == "file":
    yield urllib.request.url2pathname(urllib.parse.urlparse(url).path)
  elif scheme in ("http", "https"):
    # Web clips are small (a few MB); reading them whole gives FFmpeg the seekable file it needs.
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (scheme checked)
      yield io.BytesIO(response.read())
  else:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (gs://, s3://, hdfs:// ...)
    with tf.io.gfile.GFile(url, "rb") as f:
      yield f


def load_video(entry: Entry, *, video_root: str, num_frames: int, resolution: int,
               extensions: Sequence[str], timeout_s: float = 60.0) -> Loaded:
  """Decodes the entry's window: `num_frames` uniformly in time, `uint8 [T, R, R, 3]`.

  Local paths resolve like every annotation record (`annotations.resolve_video`: the path, else
  files named after the id or the source video under `video_root`); URLs with an allowed scheme
  (checked when the manifest was read) are fetched.
  """
  record = entry.record
  if scheme_of(record.path) is None:
    resolved = annotations.resolve_video(record, video_root, tuple(extensions))
    frames = video_io.read_video(resolved.path, num_frames, resolution=resolution,
                                 window=resolved.window)
    # A relative path under a remote video_root resolves to a remote path: keep it as it is.
    return Loaded(frames, fs.abspath(resolved.path), _window(resolved.window))
  with _open_remote(record.path, timeout_s) as source:
    frames = video_io.read_video(source, num_frames, resolution=resolution, window=entry.window)
  return Loaded(frames, record.path, _window(entry.window))


def conform(frames: np.ndarray, num_frames: int, resolution: int, where: str) -> np.ndarray:
  """Stored frames as the job's [T, R, R, 3]: T resampled uniformly (nearest), size checked."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise FrameShapeError(f"{where}: frames are {frames.dtype}{list(frames.shape)}, expected "
                          "uint8 [T, H, W, 3]")
  if frames.shape[1:3] != (resolution, resolution):
    raise FrameShapeError(f"{where}: frames are {frames.shape[1]}x{frames.shape[2]} px, the job "
                          f"wants {resolution}x{resolution}; set config.resolution to the shards' "
                          "size or write shards at this resolution")
  if frames.shape[0] != num_frames:
    # Segment starts, nearest frame with ties to the earlier one: what read_video does with
    # timestamps (segment centres would fall halfway between frames when T equals the count).
    picks = np.ceil(np.arange(num_frames) * frames.shape[0] / num_frames - 0.5).astype(int)
    frames = frames[np.minimum(picks, frames.shape[0] - 1)]
  return frames


class ShardCursor:
  """Reads shard examples in manifest order, keeping one open reader.

  A process's entries come in increasing (shard, offset) order, so one forward pass over each
  shard serves them all. Not thread-safe: use it from one prefetch worker.
  """

  def __init__(self, num_frames: int, resolution: int):
    self._num_frames, self._resolution = num_frames, resolution
    self._path: str | None = None
    self._examples: Iterator[dict[str, Any]] | None = None
    self._next = 0

  def __call__(self, entry: Entry) -> Loaded:
    from vidistill.data import shards  # pylint: disable=g-import-not-at-top  (TensorFlow)
    path, offset = entry.record.path, int(entry.record.extra["offset"])
    if path != self._path or offset < self._next or self._examples is None:
      self._path, self._examples, self._next = path, iter(shards.read_shards([path])), 0
    example = None
    while self._next <= offset:
      try:
        example = next(self._examples, None)
      except Exception:
        self._examples = None  # A damaged record ends this reader; the next call reopens.
        raise
      self._next += 1
      if example is None:
        self._examples = None
        raise ShardChangedError(f"{entry.where}: the shard ends before this example; it changed "
                                "since the unit plan was made")
    if str(example.get("id")) != entry.key:
      raise ShardChangedError(f"{entry.where}: example id {example.get('id')!r} is not "
                              f"{entry.key!r}; the shard changed since the unit plan was made")
    if "frames" in example:
      return Loaded(conform(example["frames"], self._num_frames, self._resolution, entry.where),
                    entry.where, None)
    if "video_bytes" in example:
      return Loaded(video_io.read_video(io.BytesIO(example["video_bytes"]), self._num_frames,
                                        resolution=self._resolution), entry.where, None)
    raise FrameShapeError(f"{entry.where}: example has neither 'frames' nor 'video_bytes' "
                          f"(keys: {sorted(example)})")
