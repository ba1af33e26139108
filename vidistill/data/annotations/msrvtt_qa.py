"""MSRVTT-QA (Xu et al. 2017, open-ended QA generated from MSR-VTT captions).

Layout (`train_qa.json`, `val_qa.json`, `test_qa.json`): a JSON list,
  [{"answer": "man", "category_id": 0, "id": 0, "question": "what is a man doing?", "video_id": 0}]
`video_id` is MSR-VTT's number: 0 is `video0` (video0.mp4 among the MSR-VTT clips); train uses
videos 0-6512, val 6513-7009, test 7010-9999. `category_id` is the question word (0 what, 1 who,
2 how, 3 when, 4 where).
"""
from __future__ import annotations

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord


def read_msrvtt_qa(path: str, *, split: str | None = None) -> list[VideoRecord]:
  """One record per question; `video_id` is "video<N>" as the MSR-VTT clips are named."""
  split = split if split is not None else common.split_from_filename(path)
  records = []
  for i, entry in enumerate(common.load_json_list(path)):
    where = f"entry {i}: "
    number = common.get(entry, "video_id", (int, str), path, where=where)
    if isinstance(number, str):  # Some re-exports write "video7010" or "7010"; both name one clip.
      number = number.strip().removeprefix("video")
      if not number.isdigit():
        raise AnnotationError(path, None, f"{where}key 'video_id' is {entry['video_id']!r}, "
                              "expected an MSR-VTT video number")
    records.append(VideoRecord(
        video_id=f"video{int(number)}", split=split,
        question=common.get_text(entry, "question", path, where=where),
        answer=str(common.get(entry, "answer", (str, int), path, where=where)).strip(),
        extra={"question_id": str(entry.get("id", i)), "category_id": entry.get("category_id")}))
  return records
