"""VideoCC3M (Nagrani et al. 2022, github.com/google-research-datasets/videoCC-data).

Layout (`video_cc_public.csv`): no header, four columns per line,
  <video>,<start µs>,<end µs>,<caption>
where <video> is a YouTube id (or a watch URL) and the window is in microseconds. The captions are
Conceptual Captions alt-text transferred to the video and are not CSV-quoted, so they may contain
commas: a line is split at its first three commas (as video2dataset's VideoCC recipe and other
loaders do); a caption that is quoted is unquoted. The window is in the full YouTube video.
"""
from __future__ import annotations

import csv

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord

_MICROSECONDS = 1e6


def _caption(text: str, path: str, line: int) -> str:
  text = text.strip()
  if text.startswith('"') and text.endswith('"') and len(text) > 1:
    text = next(csv.reader([text]))[0].strip()
  if not text:
    raise AnnotationError(path, line, "empty caption (4th column)")
  return text


def read_videocc(path: str, *, split: str = "train") -> list[VideoRecord]:
  """One record per clip: the transferred caption and the window in seconds.

  A first line whose start column is not a number is taken as a header (re-exports add one).
  """
  common.check_file(path)
  records = []
  with common.open_text(path, encoding="utf-8-sig") as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      fields = line.rstrip("\r\n").split(",", 3)
      if len(fields) < 4:
        raise AnnotationError(path, line_no, "expected 4 fields (video, start µs, end µs, "
                              f"caption), got {len(fields)}: {line.strip()!r}")
      video, start_text, end_text, caption = fields
      if line_no == 1 and not start_text.strip().lstrip("-").isdigit():
        continue
      video = video.strip()
      youtube_id = common.youtube_id_from_url(video) if "/" in video else video
      if not youtube_id:
        raise AnnotationError(path, line_no, f"column 1 is {video!r}, expected a YouTube id or URL")
      start = common.to_int(start_text, "start", path, line_no) / _MICROSECONDS
      end = common.to_int(end_text, "end", path, line_no) / _MICROSECONDS
      common.check_window(start, end, path, line_no)
      extra = {"clip_id": f"{youtube_id}_{start:.3f}_{end:.3f}"}
      if "/" in video:
        extra["url"] = video
      records.append(VideoRecord(video_id=youtube_id, start=start, end=end, split=split,
                                 captions=(_caption(caption, path, line_no),), extra=extra))
  return records
