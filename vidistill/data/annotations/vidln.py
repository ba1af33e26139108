"""Video Localized Narratives (VidLN; Voigtlaender et al. 2023, google/video-localized-narratives).

Layout (`OVIS_train.jsonl`, `UVO_sparse_train.jsonl`, `oops_train.jsonl`, ...; the repo's
`data/vidlns/*_sample.jsonl` and `video_localized_narratives/tools/vidln.py`): one JSON per line,
  {"vidln_id": 0, "dataset_id": "OVIS_train", "video_id": "c1a40349", "annotator_id": ...,
   "keyframe_names": ["img_0000005", ...],
   "actor_narratives": [{"actor_name": "Group of people", "caption": "A group of people is ...",
                         "keyframe_selection_indices": [...], "traces": [[{x, y, time, kf_idx}]],
                         "time_alignment": [{"referenced_word", "start_ms", "end_ms", ...}],
                         "recording_start_time_ms_since_epoch": ..., ...}, ...]}
One narrative per actor: the paper's instruction synthesis (Sec. 3.2) reads them actor by actor,
so `captions[i]` is the narrative of actor `extra["actor_names"][i]`. Mouse traces and the speech
time alignment (times in the annotator's recording, not in the video) are not kept.
Videos live at `videos/<dataset_id>/<video_id>.mp4` in the VidLN data layout, which `path` says.
"""
from __future__ import annotations

import os

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord


def read_vidln(path: str, *, split: str | None = None) -> list[VideoRecord]:
  """One record per narrated video: per-actor narratives as captions, actor names in `extra`.

  `split` defaults to the suffix of "dataset_id" ("OVIS_train" -> "train"), else the file name.
  """
  records = []
  for line, obj in common.iter_jsonl(path):
    video_id = common.get_text(obj, "video_id", path, line)
    dataset_id = common.get_text(obj, "dataset_id", path, line) if "dataset_id" in obj else ""
    actors = common.get(obj, "actor_narratives", list, path, line)
    names, captions = [], []
    for i, actor in enumerate(actors):
      where = f"actor_narratives[{i}]: "
      if not isinstance(actor, dict):
        raise AnnotationError(path, line, f"{where}is {type(actor).__name__}, expected an object")
      names.append(common.get_text(actor, "actor_name", path, line, where, allow_empty=True))
      captions.append(common.get_text(actor, "caption", path, line, where))
    record_split = split
    if record_split is None:
      record_split = common.split_from_filename(dataset_id) or common.split_from_filename(path)
    extra = {"actor_names": tuple(names), "dataset_id": dataset_id,
             "vidln_id": obj.get("vidln_id"), "annotator_id": obj.get("annotator_id"),
             "keyframe_names": tuple(obj.get("keyframe_names", ()))}
    records.append(VideoRecord(
        video_id=video_id, path=os.path.join(dataset_id, video_id) if dataset_id else None,
        split=record_split, captions=tuple(captions), extra=extra))
  return records
