"""Spoken Moments in Time (S-MiT; Monfort et al. 2021, http://moments.csail.mit.edu/spoken.html).

Layout followed: the one google-research/scenic's `projects/densevoc/tools/build_smit_tfrecord.py`
reads from the S-MiT download:
  <split file> (e.g. `train_set.txt`): one video name per line, a relative path without extension;
  videos/<name>.mp4;  transcriptions/<name>.txt: the spoken caption's transcript on its first line.
The transcripts are short ("a man is jumping into a pool"), the paper's "short caption" kind.
"""
from __future__ import annotations

import os

from vidistill import fs
from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord

_VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")


def read_smit(path: str, *, transcription_dir: str | None = None,
              split: str | None = None) -> list[VideoRecord]:
  """One record per listed video, its transcript as the single caption.

  `transcription_dir` defaults to the `transcriptions` folder next to the split file.
  """
  common.check_file(path)
  split = split if split is not None else common.split_from_filename(path)
  if transcription_dir is None:
    transcription_dir = os.path.join(os.path.dirname(path), "transcriptions")
  records = []
  with common.open_text(path) as f:
    for line_no, line in enumerate(f, start=1):
      name = line.strip()
      if not name:
        continue
      stem, ext = os.path.splitext(name)
      name = stem if ext.lower() in _VIDEO_EXTENSIONS else name
      transcript = os.path.join(transcription_dir, name + ".txt")
      if not fs.isfile(transcript):
        raise AnnotationError(path, line_no, f"no transcript {transcript} for video {name!r}; "
                              "pass transcription_dir= (the folder of <name>.txt files)")
      with common.open_text(transcript) as t:
        caption = next((s.strip() for s in t if s.strip()), "")
      if not caption:
        raise AnnotationError(path, line_no, f"transcript {transcript} is empty")
      records.append(VideoRecord(video_id=name, split=split, captions=(caption,)))
  return records
