"""MSR-VTT: the videodatainfo caption JSON, the train-9k list and the 1k-A test list.

Layouts (Xu et al. 2016 release; split lists as distributed with CLIP4Clip's `msrvtt_data.zip`):
  videodatainfo JSON (`train_val_videodatainfo.json`, `test_videodatainfo.json`,
  `MSRVTT_data.json`):
    {"info": {...},
     "videos": [{"id": 0, "video_id": "video0", "category": 9, "url": "https://www.youtube.com/...",
                 "start time": 137.72, "end time": 149.44, "split": "train"}, ...],
     "sentences": [{"caption": "...", "video_id": "video0", "sen_id": 0}, ...]}
  `MSRVTT_train.9k.csv`: header `video_id`, one video per line.
  `MSRVTT_JSFUSION_test.csv`: header `key,vid_key,video_id,sentence` (`ret0,msr9770,video9770,...`),
    the 1,000 (video, sentence) pairs of the 1k-A retrieval test.

The files `video7020.mp4` are the clips themselves: "start time"/"end time" locate the clip in its
YouTube video, so they go to `extra["source_start"/"source_end"]`, not to the record's window.
"""
from __future__ import annotations

import os

from vidistill import fs
from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord

DEFAULT_CAPTIONS_FILE = "MSRVTT_data.json"  # CLIP4Clip's name for the merged videodatainfo.
_VAL_NAMES = ("val", "validate", "validation")


def _parse_videodatainfo(path: str) -> tuple[list[dict], dict[str, list[tuple[str, int]]]]:
  """(videos, {video_id: [(caption, sen_id), ...]}) checked against the layout above."""
  videos, sentences = common.load_json_lists(path, "videos", "sentences")
  known = {common.get_text(video, "video_id", path, where=f"videos[{i}]: ")
           for i, video in enumerate(videos)}
  captions: dict[str, list[tuple[str, int]]] = {}
  for i, sentence in enumerate(sentences):
    where = f"sentences[{i}]: "
    video_id = common.get_text(sentence, "video_id", path, where=where)
    if video_id not in known:
      raise AnnotationError(path, None, f"{where}video_id {video_id!r} is not listed in 'videos'")
    caption = common.get_text(sentence, "caption", path, where=where)
    sen_id = sentence.get("sen_id", i)
    captions.setdefault(video_id, []).append((caption, sen_id))
  return videos, captions


def read_msrvtt(path: str, *, split: str | None = None) -> list[VideoRecord]:
  """One record per video of a videodatainfo JSON, with all its captions (about 20).

  `split` keeps only videos of that split ("train", "validate" (or "val"), "test").
  """
  videos, captions = _parse_videodatainfo(path)
  wanted = {split} if split not in _VAL_NAMES else set(_VAL_NAMES)
  records = []
  for i, video in enumerate(videos):
    where = f"videos[{i}]: "
    video_id = video["video_id"].strip()
    video_split = common.get_text(video, "split", path, where=where)
    if split is not None and video_split not in wanted:
      continue
    url = common.get(video, "url", str, path, where=where) if "url" in video else ""
    extra = {"category": video.get("category"), "url": url, "id": video.get("id"),
             "sen_ids": tuple(s for _, s in captions.get(video_id, ()))}
    if "start time" in video and "end time" in video:
      start = common.get(video, "start time", (int, float), path, where=where)
      end = common.get(video, "end time", (int, float), path, where=where)
      common.check_window(start, end, path, None, where)
      extra.update(source_start=float(start), source_end=float(end))
      youtube_id = common.youtube_id_from_url(url)
      if youtube_id:
        extra["youtube_id"] = youtube_id
    records.append(VideoRecord(
        video_id=video_id, split=video_split,
        captions=tuple(c for c, _ in captions.get(video_id, ())), extra=extra))
  return records


def _captions_file(path: str, captions_path: str | None) -> str:
  if captions_path is not None:
    return captions_path
  sibling = os.path.join(os.path.dirname(path), DEFAULT_CAPTIONS_FILE)
  if not fs.isfile(sibling):
    raise AnnotationError(path, None, f"the split list holds video ids only; their captions come "
                          f"from a videodatainfo JSON, looked for {sibling}: pass captions_path=")
  return sibling


def read_msrvtt_train9k(path: str, *, captions_path: str | None = None,
                        split: str = "train") -> list[VideoRecord]:
  """The 9k training videos (`MSRVTT_train.9k.csv`, or the 7k list) with their captions.

  Captions come from `captions_path`, by default `MSRVTT_data.json` next to the list.
  """
  captions_path = _captions_file(path, captions_path)
  by_id = {r.video_id: r for r in read_msrvtt(captions_path)}
  records = []
  for line, row in common.iter_csv(path, ["video_id"]):
    video_id = row["video_id"].strip()
    if video_id not in by_id:
      raise AnnotationError(path, line, f"video {video_id!r} is not in {captions_path}")
    records.append(VideoRecord(video_id=video_id, split=split, captions=by_id[video_id].captions,
                               extra=dict(by_id[video_id].extra)))
  return records


def read_msrvtt_1ka(path: str, *, captions_path: str | None = None,
                    split: str = "test") -> list[VideoRecord]:
  """The 1k-A test pairs (`MSRVTT_JSFUSION_test.csv`), one record per line.

  `captions[0]` is always the 1k-A query sentence; with `captions_path` (a videodatainfo JSON) the
  video's other captions follow it, for captioning metrics on the same videos.
  """
  by_id = {r.video_id: r for r in read_msrvtt(captions_path)} if captions_path else {}
  records = []
  for line, row in common.iter_csv(path, ["key", "vid_key", "video_id", "sentence"]):
    video_id = common.get_text(row, "video_id", path, line)
    sentence = common.get_text(row, "sentence", path, line)
    others: tuple[str, ...] = ()
    extra = {"key": row["key"].strip(), "vid_key": row["vid_key"].strip()}
    if captions_path:
      if video_id not in by_id:
        raise AnnotationError(path, line, f"video {video_id!r} is not in {captions_path}")
      others = tuple(c for c in by_id[video_id].captions if c != sentence)
      extra = {**by_id[video_id].extra, **extra}
    records.append(VideoRecord(video_id=video_id, split=split, captions=(sentence,) + others,
                               extra=extra))
  return records
