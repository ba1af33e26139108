"""Video files out with PyAV: frames -> an mp4 / mov / mkv / webm / avi file, or its bytes.

Frames are RGB `uint8 [T, H, W, 3]`, as everywhere in vidistill (video_io.py reads them back).
"""
from __future__ import annotations

import fractions
import io
import os
import threading
from typing import BinaryIO

import av
import numpy as np

from vidistill import fs

# Frames up to this many pixels are encoded on one thread: for 32-64 px clips the thread pool
# costs more than it saves, and callers parallelise over clips instead.
_SINGLE_THREAD_PIXELS = 256 * 256

# Our codec name -> (FFmpeg encoder, pixel format). yuv420p halves chroma resolution, so frames with
# an odd width or height are padded to even by repeating their last row/column (the file is then
# one pixel larger); ffv1 stores lossless RGB at any size.
_CODECS = {
    "h264": ("libx264", "yuv420p"),
    "vp9": ("libvpx-vp9", "yuv420p"),
    "mpeg4": ("mpeg4", "yuv420p"),
    "ffv1": ("ffv1", "bgr0"),
}
# File extension -> (FFmpeg muxer, default codec, codecs the container can hold).
_CONTAINERS = {
    "mp4": ("mp4", "h264", ("h264", "mpeg4", "vp9")),
    "mov": ("mov", "h264", ("h264", "mpeg4")),
    "mkv": ("matroska", "h264", ("h264", "vp9", "mpeg4", "ffv1")),
    "webm": ("webm", "vp9", ("vp9",)),
    "avi": ("avi", "mpeg4", ("mpeg4", "h264", "ffv1")),
}
_FAST_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0,
                codec: str | None = None, *, crf: int = 18, preset: str = "veryfast",
                bit_exact: bool = False) -> str:
  """Encodes `frames` (`uint8 [T, H, W, 3]` RGB) into a video file; returns the path.

  The container comes from the extension (mp4, mov, mkv, webm, avi); `codec` is one of h264, vp9,
  mpeg4, ffv1 (lossless) and defaults to the container's usual one (mp4/mov/mkv: h264, webm: vp9,
  avi: mpeg4). h264 falls back to mpeg4 when PyAV's FFmpeg lacks libx264. `crf` is the constant
  quality (h264 0-51, vp9 0-63; mpeg4 uses qscale = crf / 6); `preset` is x264's speed preset (for
  vp9 a fast preset means realtime mode). Odd sizes are padded to even for the yuv420p codecs.
  `bit_exact=True` makes h264 files byte-identical from run to run by running x264 without its
  assembly: its SIMD paths read memory they never wrote on small frames (2 of 150 encodes of one
  32x32 clip came out different), at 1.4x (32 px) to 2.6x (256 px) the encode time.
  The file is written under a temporary name and renamed, so a crash leaves no half file; missing
  parent folders are created.
  """
  path = os.fspath(path)
  muxer, codec = _container_and_codec(path, codec)
  fs.makedirs(os.path.dirname(path) or ".")
  tmp = f"{path}.partial-{os.getpid()}-{threading.get_ident()}"
  try:
    if fs.is_remote(path):  # gs://: encoded in memory, written as one object under the temp name.
      buffer = io.BytesIO()
      _encode(buffer, muxer, frames, fps, codec, crf, preset, bit_exact, name=path)
      with fs.open(tmp, "wb") as f:
        f.write(buffer.getvalue())
    else:
      _encode(tmp, muxer, frames, fps, codec, crf, preset, bit_exact, name=path)  # FFmpeg does the file I/O.
    fs.replace(tmp, path)
  finally:
    if fs.isfile(tmp):
      fs.remove(tmp)
  return path


def encode_video(frames: np.ndarray, fps: float = 8.0, codec: str | None = None, *,
                 container: str = "mp4", crf: int = 18, preset: str = "veryfast",
                 bit_exact: bool = False) -> bytes:
  """Like `write_video`, into memory: the bytes of a `container` file (for `video_bytes` shards)."""
  muxer, codec = _container_and_codec(f"<memory>.{container}", codec)
  buffer = io.BytesIO()
  _encode(buffer, muxer, frames, fps, codec, crf, preset, bit_exact, name=f"<{container} bytes>")
  return buffer.getvalue()


def _container_and_codec(path: str, codec: str | None) -> tuple[str, str]:
  ext = os.path.splitext(path)[1].lower().lstrip(".")
  if ext not in _CONTAINERS:
    raise ValueError(f"{path}: unknown video container {ext!r}; use one of {sorted(_CONTAINERS)}")
  muxer, default, allowed = _CONTAINERS[ext]
  codec = codec or default
  if codec not in _CODECS:
    raise ValueError(f"{path}: unknown codec {codec!r}; use one of {sorted(_CODECS)}")
  if codec not in allowed:
    raise ValueError(f"{path}: a .{ext} file cannot hold {codec}; use one of {list(allowed)}")
  return muxer, codec


def _encoder_options(codec: str, crf: int, preset: str, bit_exact: bool) -> dict[str, str]:
  if codec == "h264":
    return {"crf": str(crf), "preset": preset, **({"x264-params": "asm=0"} if bit_exact else {})}
  if codec == "vp9":  # b=0 selects constant-quality mode; crf alone would be capped by a bitrate.
    fast = preset in _FAST_PRESETS
    return {"crf": str(crf), "b": "0", "deadline": "realtime" if fast else "good",
            "cpu-used": "8" if fast else "2"}
  if codec == "mpeg4":  # FFmpeg's `-q:v q`: fixed quantiser q, in lambda units (FF_QP2LAMBDA=118).
    return {"flags": "+qscale", "global_quality": str(118 * min(31, max(2, round(crf / 6))))}
  return {}


def _encode(out: str | BinaryIO, muxer: str, frames: np.ndarray, fps: float, codec: str, crf: int,
            preset: str, bit_exact: bool, *, name: str) -> None:
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not frames.shape[0]:
    raise ValueError(f"{name}: frames must be uint8 [T>0, H, W, 3], got {frames.dtype} "
                     f"{list(frames.shape)}")
  if not fps > 0:
    raise ValueError(f"{name}: fps must be positive, got {fps}")
  encoder, pix_fmt = _CODECS[codec]
  if encoder == "libx264" and encoder not in av.codecs_available:
    encoder, codec = "mpeg4", "mpeg4"
  if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
    frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)),
                    mode="edge")
  rate = fractions.Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001 as NTSC means it.
  with av.open(out, "w", format=muxer) as container:
    stream = container.add_stream(encoder, rate=rate, options=_encoder_options(codec, crf, preset, bit_exact))
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    if frames.shape[1] * frames.shape[2] <= _SINGLE_THREAD_PIXELS:
      stream.codec_context.thread_count = 1
    for i, frame in enumerate(frames):
      av_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
      av_frame.pts = i  # In the codec time base 1/rate: frame i shows at i / fps seconds.
      container.mux(stream.encode(av_frame))
    container.mux(stream.encode())
