"""NExT-QA (Xiao et al. 2021, github.com/doc-doc/NExT-QA): multiple-choice and open-ended QA.

Layout: `train.csv` / `val.csv` / `test.csv` with header
  video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4
where `answer` is the index (0-4) of the right candidate among a0..a4 and `type` the question type
(CW/CH causal, TN/TC/TP temporal, DC/DL/DO descriptive). The open-ended NExT-OE files have the same
columns up to `type` with the answer text in `answer` (and `additional_ref_answer`), no a0..a4.
`map_vid_vidorID.json` maps the numeric `video` to its path in NExTVideo, e.g.
  {"2440175990": "0000/2440175990", ...};  the video is NExTVideo/0000/2440175990.mp4.
"""
from __future__ import annotations

import os

from vidistill import fs
from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord

DEFAULT_VIDEO_MAP = "map_vid_vidorID.json"
_REQUIRED = ("video", "question", "answer", "qid", "type")
_CANDIDATES = ("a0", "a1", "a2", "a3", "a4")


def _load_video_map(path: str, video_map: str | None) -> dict[str, str]:
  if video_map is None:
    sibling = os.path.join(os.path.dirname(path), DEFAULT_VIDEO_MAP)
    if not fs.isfile(sibling):
      return {}
    video_map = sibling
  doc = common.load_json(video_map)
  if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
    raise AnnotationError(video_map, None, "expected a JSON object {video id: relative path}")
  return {str(k): v for k, v in doc.items()}


def read_nextqa(path: str, *, video_map: str | None = None,
                split: str | None = None) -> list[VideoRecord]:
  """One record per question.

  Multiple-choice rows give `candidates`, `answer_index` and `answer` (the right candidate's text);
  open-ended rows give `answer` only. `video_map` (default: `map_vid_vidorID.json` next to the CSV
  when present) sets each record's `path`, relative to the NExTVideo folder.
  """
  split = split if split is not None else common.split_from_filename(path)
  paths = _load_video_map(path, video_map)
  records = []
  for line, row in common.iter_csv(path, _REQUIRED):
    video = common.get_text(row, "video", path, line)
    question = common.get_text(row, "question", path, line)
    qid = common.get_text(row, "qid", path, line)
    extra = {"qid": qid, "type": row["type"].strip(), "question_id": f"{video}_{qid}"}
    for key in ("frame_count", "width", "height"):
      if row.get(key, "").strip():
        extra[key] = common.to_int(row[key], key, path, line)
    if all(c in row for c in _CANDIDATES):
      candidates = tuple(common.get_text(row, c, path, line) for c in _CANDIDATES)
      index = common.to_int(row["answer"], "answer", path, line)
      if not 0 <= index < len(candidates):
        raise AnnotationError(path, line,
                              f"answer index {index} is not in 0..{len(candidates) - 1}")
      answer, answer_index = candidates[index], index
    else:
      candidates, answer_index = (), None
      answer = common.get_text(row, "answer", path, line)
      if row.get("additional_ref_answer", "").strip():
        extra["additional_ref_answer"] = row["additional_ref_answer"].strip()
    records.append(VideoRecord(video_id=video, path=paths.get(video), split=split,
                               question=question, answer=answer, candidates=candidates,
                               answer_index=answer_index, extra=extra))
  return records
