"""Video files in with PyAV: sample frames by time, typed errors (writing: video_write.py).

Frames are RGB `uint8 [T, H, W, 3]` everywhere. Times are seconds from the first frame of the video
stream, the unit InternVid / VideoCC windows use. Sampling reads frame presentation timestamps from
the container (a demux pass, no decoding), picks the frame whose timestamp is nearest to each target
time, then decodes only as far as the last picked frame, so variable-frame-rate files sample the
same instants as constant-rate ones.

Known limits: the display matrix is snapped to the nearest multiple of 90 degrees (the eight
orientations phones write); sample aspect ratio (anamorphic pixels) is ignored; a streaming
container (mkv/webm) cut short decodes to what is left, and only raises `EmptyVideoError` when
nothing is; an mp4 cut inside its index may parse as a file without streams (`EmptyVideoError`).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
from typing import BinaryIO, Iterator, Literal, Union

import av
from av.video.reformatter import VideoReformatter
import numpy as np

from vidistill import fs

PathOrFile = Union[str, os.PathLike, BinaryIO]
Resolution = Union[int, tuple[int, int], None]

# Decoding ahead by up to this much is cheaper than a seek (a seek lands on the keyframe before the
# target; x264's default GOP is 250 frames, ~10 s at 25 fps).
_SEEK_GAP_S = 10.0
# B-frames make packet order differ from presentation order by a few frames; demux this many
# packets past the window end so the last frames inside it are seen.
_REORDER_SLACK = 16


class VideoError(Exception):
  """A video could not be read. `path` names the file, `reason` says what is wrong with it."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path, self.reason = path, reason

  def __reduce__(self):  # Rebuilt from (path, reason) when a worker process sends it back.
    return type(self), (self.path, self.reason)


class VideoNotFoundError(VideoError):
  """The path does not exist (or is a directory)."""


class CorruptVideoError(VideoError):
  """FFmpeg cannot open or decode the file: garbage bytes, a truncated mp4, a damaged stream."""


class EmptyVideoError(VideoError):
  """A zero-length file, or a container whose video holds no frames."""


class NotAVideoError(CorruptVideoError):
  """FFmpeg cannot open the file and its first bytes are no video container's (a text file,
  a program, an image): listed by mistake rather than damaged."""


class NoVideoStreamError(VideoError):
  """The container has streams but none is video (an audio-only file)."""


class WindowError(VideoError):
  """The requested time window lies after the end of the video."""


# ------------------------------------------------------------------------------------------------
# Opening, with every failure turned into a typed error that names the file.

def _name(source: PathOrFile) -> str:
  if isinstance(source, (str, os.PathLike)):
    return os.fspath(source)
  return str(getattr(source, "name", "<in-memory video>"))


@contextlib.contextmanager
def _open_video(source: PathOrFile) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
  """Yields (container, its video stream); FFmpeg errors inside the block become VideoErrors.

  A remote path (gs://...) is read through its tf.io.gfile file object, which FFmpeg seeks in.
  """
  if isinstance(source, (str, os.PathLike)) and fs.is_remote(source):
    name = os.fspath(source)
    try:
      f = fs.open(name, "rb")
    except FileNotFoundError as e:
      raise VideoNotFoundError(name, "no such video file; check the path and the data set root"
                               ) from e
    with f, _open_local_or_file(f) as opened:
      yield opened
    return
  with _open_local_or_file(source) as opened:
    yield opened


@contextlib.contextmanager
def _open_local_or_file(source: PathOrFile
                        ) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
  name = _name(source)
  if isinstance(source, (str, os.PathLike)):
    if not os.path.exists(source) or os.path.isdir(source):
      raise VideoNotFoundError(name, "no such video file; check the path and the data set root")
    size = os.path.getsize(source)
  else:
    source.seek(0, io.SEEK_END)  # tf.io.gfile.GFile's seek returns None: ask tell().
    size = source.tell()
    source.seek(0)
  if size == 0:
    raise EmptyVideoError(name, "the file is empty (0 bytes); re-download or drop it")
  try:
    container = av.open(source, "r")
  except av.error.FileNotFoundError as e:
    raise VideoNotFoundError(name, "no such video file") from e
  except av.error.EOFError as e:
    if _starts_with(source, _EBML_MAGIC):  # Matroska with zero frames, or cut inside its header.
      raise EmptyVideoError(name, "the Matroska file ends before its first frame") from e
    raise CorruptVideoError(name, "the file ends unexpectedly; it is truncated") from e
  except av.error.FFmpegError as e:
    if not _looks_like_video(source):
      raise NotAVideoError(name, f"not a video: FFmpeg cannot open it ({e.strerror or e}) and "
                           "its first bytes are no video container's (mp4/mov, mkv/webm, avi, "
                           "mpeg, flv, ogg); check that the manifest lists video files") from e
    raise CorruptVideoError(name, f"FFmpeg cannot open it ({e.strerror or e}); the file is "
                                  "damaged, truncated or not a video") from e
  try:
    stream = _video_stream(container, name)
    try:
      yield container, stream
    except av.error.FFmpegError as e:
      raise CorruptVideoError(name, f"decoding failed ({e.strerror or e}); the file is damaged or "
                                    "truncated") from e
  finally:
    container.close()


_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # The first bytes of every Matroska / WebM file.


def _head(source: PathOrFile, size: int) -> bytes:
  if isinstance(source, (str, os.PathLike)):
    with open(source, "rb") as f:
      return f.read(size)
  source.seek(0)
  return source.read(size)


def _starts_with(source: PathOrFile, magic: bytes) -> bool:
  return _head(source, len(magic)) == magic


# ISO BMFF (mp4/mov/3gp) box types that open a file, at byte 4.
_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def _looks_like_video(source: PathOrFile) -> bool:
  """Whether the first bytes are those of a container FFmpeg reads video from (a damaged file
  of that kind is corrupt; anything else is not a video at all)."""
  head = _head(source, 12)
  return (head[4:8] in _BMFF_BOXES or head.startswith((_EBML_MAGIC, b"OggS", b"FLV", b"GIF8",
                                                      b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"))
          or (head.startswith(b"RIFF") and head[8:12] == b"AVI ") or head[:1] == b"\x47")


def _video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
  # Cover art in audio files shows up as a one-frame video stream marked attached_pic.
  videos = [s for s in container.streams.video if not _is_cover_art(s)]
  if videos:
    if videos[0].codec_context is None:  # Seen in mp4 files cut inside their index.
      raise CorruptVideoError(name, "the video stream has no codec parameters; the file is "
                                    "truncated or damaged")
    _check_index(container, videos[0], name)
    return videos[0]
  kinds = sorted({s.type for s in container.streams})
  if not kinds:  # The mp4 muxer drops tracks that received no frames.
    raise EmptyVideoError(name, "the container holds no streams (written with zero frames?)")
  if {"audio", "subtitle"} & set(kinds):
    raise NoVideoStreamError(name, f"no video stream, only {kinds}; is this an audio file?")
  raise CorruptVideoError(name, f"no decodable stream (found {kinds}); the file is probably "
                                "truncated")


def _check_index(container: av.container.InputContainer, stream: av.VideoStream,
                 name: str) -> None:
  """An mp4 cut short keeps its index (moov) when written with faststart: compare its last entries
  with the file size, so truncation is caught without reading the frames."""
  entries = getattr(stream, "index_entries", None)  # PyAV >= 14.
  size = getattr(container, "size", 0)
  if not entries or not size or size < 0:
    return
  end = max(e.pos + e.size for e in (entries[i] for i in range(max(0, len(entries) - 8),
                                                              len(entries))))
  if end > size:
    raise CorruptVideoError(name, f"its index points to byte {end} but the file has {size}; the "
                                  "file is truncated")


def _is_cover_art(stream: av.VideoStream) -> bool:
  disposition = getattr(stream, "disposition", None)  # PyAV >= 13.
  return disposition is not None and bool(disposition & av.stream.Disposition.attached_pic)


# ------------------------------------------------------------------------------------------------
# Timestamps.

def _seek(container: av.container.InputContainer, stream: av.VideoStream, seconds: float) -> None:
  """Moves to the keyframe at or before `seconds` (decoders are flushed by PyAV)."""
  origin = stream.start_time or 0
  container.seek(origin + int(seconds / stream.time_base), stream=stream, backward=True)


def _frame_times(container: av.container.InputContainer, stream: av.VideoStream, start: float,
                 stop: float) -> tuple[np.ndarray, np.ndarray, float]:
  """Scans packets from the keyframe before `start` to just past `stop`.

  Returns (pts int64 [N] sorted, their times in seconds float64 [N], the end of the last frame in
  seconds); N covers every frame in [start, stop] plus neighbours on each side.
  """
  if start > 0:
    _seek(container, stream, start)
  tb, origin = float(stream.time_base), stream.start_time or 0
  durations: dict[int, int] = {}
  past_stop = 0
  for packet in container.demux(stream):
    pts = packet.pts if packet.pts is not None else packet.dts
    if pts is None:  # The empty packet that flushes the decoder at the end.
      continue
    durations[pts] = packet.duration or 0
    if (pts - origin) * tb > stop:
      past_stop += 1
      if past_stop > _REORDER_SLACK:
        break
  pts = np.array(sorted(durations), np.int64)
  times = (pts - origin) * tb
  if not pts.size:
    return pts, times, 0.0
  last = durations[int(pts[-1])] * tb
  if not last:
    last = float(np.median(np.diff(times))) if times.size > 1 else 1.0 / float(
        stream.average_rate or stream.guessed_rate or 25)
  return pts, times, float(times[-1] + last)


def _metadata_duration(container: av.container.InputContainer,
                       stream: av.VideoStream) -> float | None:
  if stream.duration:
    return float(stream.duration * stream.time_base)
  if container.duration:
    return container.duration / av.time_base
  return None


def _nearest(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """Index of the time nearest to each target (ties go to the earlier frame)."""
  right = np.clip(np.searchsorted(times, targets), 0, times.size - 1)
  left = np.clip(right - 1, 0, times.size - 1)
  return np.where(np.abs(targets - times[left]) <= np.abs(times[right] - targets), left, right)


def _pick_frames(times: np.ndarray, start: float, stop: float, num_frames: int,
                 short: str) -> np.ndarray:
  """Indices into `times` for `num_frames` uniform instants in [start, stop); -1 is a black frame.

  Target i is at start + i * (stop - start) / num_frames, so a clip of exactly num_frames frames
  returns each frame once and fewer frames repeat (nearest sampling).
  """
  inside = np.flatnonzero((times >= start) & (times < stop))
  if short == "pad" and inside.size < num_frames:
    if not inside.size:
      inside = _nearest(times, np.array([start]))
    return np.concatenate([inside, np.full(num_frames - inside.size, -1)])
  targets = start + (stop - start) * np.arange(num_frames) / num_frames
  return _nearest(times, targets)


# ------------------------------------------------------------------------------------------------
# Orientation and resizing.

def _display_matrix(frame: av.VideoFrame, stream: av.VideoStream) -> np.ndarray | None:
  """The (a, b, c, d) entries of the frame's display matrix, or None when the file has none.

  The matrix [[a, b, 0], [c, d, 0], [x, y, 1]] maps a pixel (col, row) to (a col + c row,
  b col + d row): the convention FFmpeg's own autorotate follows (a rotation reported as -90 is
  displayed turned 90 degrees clockwise). Files muxed by old FFmpeg carry a `rotate` tag instead
  (clockwise degrees).
  """
  for side_data in frame.side_data:
    if side_data.type.name == "DISPLAYMATRIX":
      return np.frombuffer(bytes(side_data), np.int32)[[0, 1, 3, 4]] / 65536.0  # 16.16 fixed.
  tag = stream.metadata.get("rotate")
  if tag:
    theta = -math.radians(float(tag))  # Counter-clockwise, the matrix's own sense.
    return np.array([math.cos(theta), -math.sin(theta), math.sin(theta), math.cos(theta)])
  return None


def _orientation(matrix: np.ndarray | None) -> tuple[bool, bool, bool]:
  """(transpose, flip rows, flip columns) turning a decoded frame into its displayed form.

  The matrix is snapped to the nearest of the eight axis-aligned orientations.
  """
  if matrix is None:
    return False, False, False
  a, b, c, d = matrix
  if abs(a) + abs(d) >= abs(b) + abs(c):
    return False, d < 0, a < 0
  return True, b < 0, c < 0


def _rotation_degrees(matrix: np.ndarray | None) -> int:
  """Counter-clockwise rotation in (-180, 180], a multiple of 90 (mirroring is not reported)."""
  if matrix is None:
    return 0
  degrees = 90 * round(math.degrees(math.atan2(-matrix[1], matrix[0])) / 90)
  return 180 if degrees == -180 else int(degrees)


def _display(array: np.ndarray, orientation: tuple[bool, bool, bool]) -> np.ndarray:
  transpose, flip_rows, flip_cols = orientation
  if transpose:
    array = array.transpose(1, 0, 2)
  if flip_rows:
    array = array[::-1]
  if flip_cols:
    array = array[:, ::-1]
  return array


def _target_size(resolution: Resolution) -> tuple[int, int] | None:
  if resolution is None:
    return None
  size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
  if len(size) != 2 or min(size) < 1:
    raise ValueError(f"resolution must be a positive int or (height, width), got {resolution!r}")
  return int(size[0]), int(size[1])


def _convert(frame: av.VideoFrame, orientation: tuple[bool, bool, bool],
             size: tuple[int, int] | None, resize: str,
             reformatter: VideoReformatter) -> np.ndarray:
  """Decoded frame -> displayed RGB `uint8 [H, W, 3]` at `size` (crop or letterbox).

  One `reformatter` serves a whole clip: it keeps its swscale context, which costs ten times the
  conversion itself to rebuild for every small frame.
  """
  if size is None:
    rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
    return np.ascontiguousarray(_display(rgb, orientation))
  height, width = (frame.width, frame.height) if orientation[0] else (frame.height, frame.width)
  fit = max if resize == "crop" else min
  scale = fit(size[0] / height, size[1] / width)
  scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
  if resize == "crop":  # Rounding may leave the short side one pixel short of the target.
    scaled = (max(scaled[0], size[0]), max(scaled[1], size[1]))
  else:
    scaled = (min(scaled[0], size[0]), min(scaled[1], size[1]))
  coded = scaled[::-1] if orientation[0] else scaled
  # swscale's area filter averages over the footprint of each output pixel when shrinking (no
  # aliasing) and interpolates when enlarging, in the same pass as the YUV -> RGB conversion.
  rgb = reformatter.reformat(frame, width=coded[1], height=coded[0], format="rgb24",
                            interpolation="AREA").to_ndarray()
  array = _display(rgb, orientation)
  if resize == "crop":
    top, left = (scaled[0] - size[0]) // 2, (scaled[1] - size[1]) // 2
    return np.ascontiguousarray(array[top:top + size[0], left:left + size[1]])
  out = np.zeros(size + (3,), np.uint8)
  top, left = (size[0] - scaled[0]) // 2, (size[1] - scaled[1]) // 2
  out[top:top + scaled[0], left:left + scaled[1]] = array
  return out


# ------------------------------------------------------------------------------------------------
# Reading.

def read_video(path: PathOrFile, num_frames: int, *, resolution: Resolution = None,
               window: tuple[float, float] | None = None, random_window: float | None = None,
               rng: np.random.Generator | None = None, resize: Literal["crop", "pad"] = "crop",
               short: Literal["repeat", "pad"] = "repeat") -> np.ndarray:
  """Samples `num_frames` frames uniformly in time; returns `uint8 [T, H, W, 3]` RGB as displayed.

  Args:
    path: a video file (or a seekable binary file object).
    num_frames: T.
    resolution: (H, W) or a square side; None keeps the native (rotated) size. "crop" scales the
      shorter side to fit and centre-crops, "pad" fits the longer side and pads with black.
    window: (start, end) seconds to sample from; None means the whole clip.
    random_window: length in seconds of a sub-window drawn uniformly inside `window` (or the clip)
      with `rng`, which is then required.
    short: when the span holds fewer than T frames, "repeat" frames (nearest sampling) or "pad"
      the frames it has with black ones at the end.
  Raises:
    VideoError subclasses naming the file; WindowError when the window starts after the end.
  """
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if resize not in ("crop", "pad") or short not in ("repeat", "pad"):
    raise ValueError(f"resize must be 'crop' or 'pad' and short 'repeat' or 'pad'; got "
                     f"{resize!r}, {short!r}")
  if window is not None and not 0 <= window[0] <= window[1]:
    raise ValueError(f"window must be (start, end) with 0 <= start <= end, got {window}")
  if random_window is not None and (rng is None or not random_window > 0):
    raise ValueError("random_window needs a positive length and an explicit rng "
                     f"(np.random.Generator); got {random_window}, {rng}")
  size = _target_size(resolution)
  name = _name(path)
  with _open_video(path) as (container, stream):
    if random_window is not None:
      lo, hi = window if window is not None else (0.0, _metadata_duration(container, stream))
      if hi is None:
        hi = _frame_times(container, stream, 0.0, math.inf)[2]
        _seek(container, stream, 0.0)
      begin = rng.uniform(lo, max(lo, hi - random_window))
      window = (begin, min(hi, begin + random_window)) if hi - lo >= random_window else (lo, hi)
    start, stop = window if window is not None else (0.0, math.inf)
    pts, times, end = _frame_times(container, stream, start, stop)
  if not pts.size:
    raise EmptyVideoError(name, "the video stream holds no frames")
  if window is None:
    start, stop = float(times[0]), end
  elif start >= end:
    raise WindowError(name, f"window {window} starts after the video ends at {end:.3f} s")
  picks = _pick_frames(times, start, stop, num_frames, short)
  wanted = sorted({int(pts[i]) for i in picks if i >= 0})
  with _open_video(path) as (container, stream):
    decoded = _decode(container, stream, wanted, size, resize, name)
  shape = next(iter(decoded.values())).shape
  black = np.zeros(shape, np.uint8)
  return np.stack([decoded[int(pts[i])] if i >= 0 else black for i in picks])


def _decode(container: av.container.InputContainer, stream: av.VideoStream, wanted: list[int],
            size: tuple[int, int] | None, resize: str, name: str) -> dict[int, np.ndarray]:
  """Decodes the frames whose pts are in `wanted` (sorted), seeking over long gaps."""
  tb, origin = float(stream.time_base), stream.start_time or 0
  seconds = lambda pts: (pts - origin) * tb
  out: dict[int, np.ndarray] = {}
  orientation, reformatter = None, VideoReformatter()
  k, position = 0, 0.0
  while k < len(wanted):
    if seconds(wanted[k]) - position > (_SEEK_GAP_S if out else 0.0):
      _seek(container, stream, seconds(wanted[k]))
    for frame in container.decode(stream):
      pts = frame.pts if frame.pts is not None else frame.dts
      if pts is None:
        continue
      position = seconds(pts)
      if pts == wanted[k]:
        if orientation is None:
          orientation = _orientation(_display_matrix(frame, stream))
        out[pts] = _convert(frame, orientation, size, resize, reformatter)
        k += 1
        if k == len(wanted) or seconds(wanted[k]) - position > _SEEK_GAP_S:
          break
      elif pts > wanted[k]:
        raise CorruptVideoError(name, f"the frame at {seconds(wanted[k]):.3f} s is in the index "
                                      "but cannot be decoded; the file is damaged")
    else:
      if k < len(wanted):
        raise CorruptVideoError(name, f"the stream ends before the frame at "
                                      f"{seconds(wanted[k]):.3f} s; the file is truncated")
  return out


def video_info(path: PathOrFile) -> dict[str, float | int | str]:
  """Container facts without decoding more than one frame.

  Returns {"duration": s, "fps": float, "num_frames": int, "width", "height": as displayed
  (after rotation), "codec": FFmpeg decoder name, "rotation": counter-clockwise degrees of the
  display matrix}. `num_frames` is exact: the container's frame count where it stores one (mp4),
  else the video packets counted by demuxing the whole file (Matroska / WebM store none, and
  duration x fps is wrong for variable frame rates); no frame is decoded for it.
  """
  name = _name(path)
  with _open_video(path) as (container, stream):
    fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
    duration = _metadata_duration(container, stream)
    stored = int(stream.frames or 0)
    whole = duration is None or not stored
    pts, _, end = _frame_times(container, stream, 0.0, math.inf if whole else 0.0)
    if not pts.size:
      raise EmptyVideoError(name, "the video stream holds no frames")
    duration = end if duration is None else duration
    _seek(container, stream, 0.0)
    frame = next(iter(container.decode(stream)), None)
    if frame is None:
      raise CorruptVideoError(name, "no frame can be decoded; the file is damaged")
    matrix = _display_matrix(frame, stream)
    transpose = _orientation(matrix)[0]
    width, height = (frame.height, frame.width) if transpose else (frame.width, frame.height)
    return {"duration": duration, "fps": fps,
            "num_frames": stored or int(pts.size),
            "width": width, "height": height, "codec": stream.codec_context.name,
            "rotation": _rotation_degrees(matrix)}
