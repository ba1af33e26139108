"""ActivityNet-QA (Yu et al. 2019, github.com/MILVLG/activitynet-qa, `dataset/README.md`).

Layout: questions and answers in two JSON lists per split, joined by "question_id":
  `train_q.json`: [{"video_name": "<YouTube id>", "question": "...", "question_id": "..."}]
  `train_a.json`: [{"answer": "...", "type": 3, "question_id": "..."}]
Types: 0 motion, 1 spatial relation, 2 temporal relation, 3-8 free (yes/no, color, object,
location, number, other). The videos are ActivityNet's, whose downloaders name them
`v_<YouTube id>.mp4`; both names are tried (`extra["file_stems"]`).
"""
from __future__ import annotations

import re

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord


def read_activitynet_qa(path: str, *, answers_path: str | None = None,
                        split: str | None = None) -> list[VideoRecord]:
  """One record per question of a `*_q.json` file, answered from the matching `*_a.json`.

  `answers_path` defaults to the questions file with `_q.json` replaced by `_a.json`.
  """
  if answers_path is None:
    if not re.search(r"_q\.json$", path):
      raise AnnotationError(path, None, "expected a questions file named *_q.json (or pass "
                            "answers_path=)")
    answers_path = re.sub(r"_q\.json$", "_a.json", path)
  split = split if split is not None else common.split_from_filename(path)
  answers = {}
  for i, entry in enumerate(common.load_json_list(answers_path)):
    where = f"entry {i}: "
    qid = common.get(entry, "question_id", (str, int), answers_path, where=where)
    answers[str(qid)] = (common.get(entry, "answer", (str, int, float), answers_path, where=where),
                         entry.get("type"))
  records = []
  for i, entry in enumerate(common.load_json_list(path)):
    where = f"entry {i}: "
    qid = str(common.get(entry, "question_id", (str, int), path, where=where))
    video = common.get_text(entry, "video_name", path, where=where)
    if qid not in answers:
      raise AnnotationError(path, None, f"{where}question_id {qid!r} has no answer in "
                            f"{answers_path}")
    answer, qtype = answers[qid]
    stem = video[2:] if video.startswith("v_") else "v_" + video
    records.append(VideoRecord(
        video_id=video, split=split, question=common.get_text(entry, "question", path, where=where),
        answer=str(answer).strip(),
        extra={"question_id": qid, "type": qtype, "file_stems": (stem,)}))
  return records
