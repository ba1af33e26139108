"""VATEX captions (Wang et al. 2019, https://eric-xw.github.io/vatex-website/download.html).

Layout: a JSON list, one entry per clip,
  [{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": [10 English captions], "chCap": [10 Chinese]}]
(`vatex_training_v1.0.json`, `vatex_validation_v1.0.json`; the public test file has "enCap" only,
the private test file "videoID" only). The id is `<youtube id>_<start:06d>_<end:06d>`: the clip's
window in seconds in its YouTube video. YouTube ids may themselves contain "_", so the two numbers
are split off from the right. The clip files (`<videoID>.mp4`, as the usual downloaders write them)
are the window already, so the window goes to `extra["source_start"/"source_end"]`.
"""
from __future__ import annotations

import re

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord

_VATEX_ID = re.compile(r"^(.+)_(\d{6})_(\d{6})$")


def parse_clip_id(clip_id: str) -> tuple[str, int, int]:
  """("Ptf_2VRj-V0", 122, 132) from "Ptf_2VRj-V0_000122_000132"; ValueError if not of that form."""
  match = _VATEX_ID.match(clip_id)
  if not match:
    raise ValueError(f"clip id {clip_id!r} is not <youtube id>_<start:06d>_<end:06d>")
  return match.group(1), int(match.group(2)), int(match.group(3))


def read_vatex(path: str, *, split: str | None = None,
               language: str = "en") -> list[VideoRecord]:
  """One record per clip with its English ("en") or Chinese ("zh") captions.

  `split` defaults to the one in the file name (training -> "train", validation -> "val", test).
  Chinese captions are kept in `extra["zh_captions"]` when English ones are the captions.
  """
  if language not in ("en", "zh"):
    raise ValueError(f"language={language!r}: expected 'en' or 'zh'")
  split = split if split is not None else common.split_from_filename(path)
  records = []
  for i, entry in enumerate(common.load_json_list(path)):
    where = f"entry {i}: "
    clip_id = common.get_text(entry, "videoID", path, where=where)
    try:
      youtube_id, start, end = parse_clip_id(clip_id)
    except ValueError as e:
      raise AnnotationError(path, None, f"{where}key 'videoID': {e}") from None
    common.check_window(start, end, path, None, where)
    en = common.get_texts(entry, "enCap", path, where=where) if "enCap" in entry else ()
    zh = common.get_texts(entry, "chCap", path, where=where) if "chCap" in entry else ()
    extra = {"youtube_id": youtube_id, "source_start": float(start), "source_end": float(end)}
    if language == "en" and zh:
      extra["zh_captions"] = zh
    records.append(VideoRecord(video_id=clip_id, split=split,
                               captions=en if language == "en" else zh, extra=extra))
  return records
