"""Kinetics-400/600/700 (Kay et al. 2017, deepmind.com/open-source/kinetics).

Layout: one CSV per split with header
  label,youtube_id,time_start,time_end,split[,is_cc]
(`is_cc`: 1 for Creative-Commons videos, in the 2020 releases; the test CSVs have no `label`).
Labels with spaces are quoted ("air drumming"). time_start/time_end are whole seconds of the
clip within its YouTube video. Downloaders (activitynet's crawler, cvdfoundation/kinetics-dataset)
write the clip as `<youtube_id>_<start:06d>_<end:06d>.mp4`, in `<split>/` and sometimes in
`<split>/<label>/`, so that name is the record's `video_id` and the clip is the whole file.
"""
from __future__ import annotations

from vidistill.data.annotations import common
from vidistill.data.records import VideoRecord


def read_kinetics(path: str, *, split: str | None = None) -> list[VideoRecord]:
  """One record per clip; `label` is the class name (None in test files).

  `split` overrides the CSV's `split` column (else the file name gives it).
  """
  records = []
  for line, row in common.iter_csv(path, ["youtube_id", "time_start", "time_end"]):
    youtube_id = common.get_text(row, "youtube_id", path, line)
    start = common.to_float(row["time_start"], "time_start", path, line)
    end = common.to_float(row["time_end"], "time_end", path, line)
    common.check_window(start, end, path, line)
    extra = {"youtube_id": youtube_id, "source_start": start, "source_end": end}
    if row.get("is_cc", "").strip():
      extra["is_cc"] = common.to_int(row["is_cc"], "is_cc", path, line)
    record_split = split or row.get("split", "").strip() or common.split_from_filename(path)
    records.append(VideoRecord(video_id=common.clip_name(youtube_id, start, end),
                               split=record_split, label=row.get("label", "").strip() or None,
                               extra=extra))
  return records
