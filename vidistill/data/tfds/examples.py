"""What the vidistill TFDS builders share: the config (frames, resolution), features, examples.

A builder turns annotation records plus a folder of videos into TFDS shards: each record's video
is found with `annotations.resolve_video`, decoded to `uint8 [T, H, W, 3]` with
`video_io.read_video` (T frames uniform in time over the clip or its window, shorter side scaled
to H then centre-cropped), and stored PNG-encoded, so what a model reads is bit-exact.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Sequence

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from vidistill.data import annotations
from vidistill.data import video_io
from vidistill.data.records import VideoRecord


@dataclasses.dataclass(eq=False)
class VideoConfig(tfds.core.BuilderConfig):
  """Frames per video and their square side; what happens to records whose video is unusable."""
  num_frames: int = 16
  resolution: int = 224
  extensions: tuple[str, ...] = annotations.DEFAULT_EXTENSIONS
  # YouTube-sourced sets always miss some videos (taken down, region-locked): skip those records
  # with a warning and a count, or stop at the first one.
  skip_missing: bool = True


STANDARD_CONFIGS = (
    dict(name="frames16_res224", num_frames=16, resolution=224,
         description="16 frames uniform in time, 224x224 (the paper's video VLM input)."),
    dict(name="frames32_res224", num_frames=32, resolution=224,
         description="32 frames uniform in time, 224x224."),
    dict(name="frames8_res64", num_frames=8, resolution=64,
         description="8 frames at 64x64: small, for trying a pipeline on a laptop."),
)


def video_feature(config: VideoConfig) -> tfds.features.Video:
  return tfds.features.Video(shape=(config.num_frames, config.resolution, config.resolution, 3),
                             encoding_format="png")


def decode_records(records: Sequence[VideoRecord], video_root: str,
                   config: VideoConfig) -> Iterator[tuple[int, VideoRecord, np.ndarray]]:
  """(index, record, frames uint8 [T, R, R, 3]) for each record whose video decodes.

  Missing or undecodable videos are skipped with a warning when `config.skip_missing`, and the
  count is logged at the end; otherwise the first one raises (VideoPathError / VideoError).
  """
  skipped = 0
  for index, record in enumerate(records):
    try:
      resolved = annotations.resolve_video(record, video_root, config.extensions)
      frames = video_io.read_video(resolved.path, config.num_frames, resolution=config.resolution,
                                   window=resolved.window)
    except (annotations.VideoPathError, video_io.VideoError) as e:
      if not config.skip_missing:
        raise
      skipped += 1
      logging.warning("skipping record %r: %s", annotations.record_id(record), e)
      continue
    yield index, record, frames
  if skipped:
    logging.warning("skipped %d of %d records whose video is missing or unreadable", skipped,
                    len(records))


def example_key(index: int, record: VideoRecord) -> str:
  """Unique within a split even where ids repeat (one video, many questions or windows)."""
  return f"{index:09d}:{annotations.record_id(record)}"


def texts(values: Iterable[str]) -> list[str]:
  return [v for v in values if v]
