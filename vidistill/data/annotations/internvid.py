"""InternVid (Wang et al. 2023, huggingface.co/datasets/OpenGVLab/InternVid).

Layout (`InternVid-10M-FLT.jsonl`, also the 18M/230M files): one JSON per line,
  {"YoutubeID": "qi3n35jW_Vw", "Start_timestamp": "00:05:20.120", "End_timestamp": "00:05:24.320",
   "Caption": "a young asian man standing in front of a lake", "Aesthetic_Score": 4.30,
   "UMT_Score": 0.40, ...}
A clip is a window of a YouTube video: `video_id` is the YouTube id, start/end the window in the
downloaded full video. One video has many clips, so `extra["clip_id"]` names each uniquely.
Every other field (scores, language, ...) is kept in `extra`.
"""
from __future__ import annotations

from vidistill.data.annotations import common
from vidistill.data.records import VideoRecord

_KEYS = ("YoutubeID", "Start_timestamp", "End_timestamp", "Caption")


def read_internvid(path: str, *, split: str = "train") -> list[VideoRecord]:
  """One record per clip: the generated caption, the window in seconds."""
  records = []
  for line, obj in common.iter_jsonl(path):
    youtube_id = common.get_text(obj, "YoutubeID", path, line)
    start = common.to_timestamp(common.get_text(obj, "Start_timestamp", path, line),
                                "Start_timestamp", path, line)
    end = common.to_timestamp(common.get_text(obj, "End_timestamp", path, line),
                              "End_timestamp", path, line)
    common.check_window(start, end, path, line)
    caption = common.get_text(obj, "Caption", path, line)
    extra = {k: v for k, v in obj.items() if k not in _KEYS}
    extra["clip_id"] = f"{youtube_id}_{start:.3f}_{end:.3f}"
    records.append(VideoRecord(video_id=youtube_id, start=start, end=end, split=split,
                               captions=(caption,), extra=extra))
  return records
