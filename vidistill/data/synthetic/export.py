"""The world's annotation files, in the published layouts of the real data sets they stand for.

Pure functions from truth records (clips.truth_record) to JSON-ready objects / CSV rows, plus
deterministic writers (same records => same bytes). One reader path then serves real and synthetic
data (vidistill.data.annotations):

  image_text -> COCO captions JSON        labeled    -> VATEX JSON (gold; short in a second file)
  narratives -> VidLN JSONL               pool       -> InternVid JSONL (alt-text only)
  test       -> MSR-VTT videodatainfo     qa         -> NExT-QA CSV + MSRVTT-QA JSON
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any, Iterable, Sequence

from vidistill.data.synthetic import vocab

# File names under DIR/annotations/, by split.
FILES = {
    "image_text": ("image_text_captions.json",),
    "labeled": ("labeled_vatex.json", "labeled_short_vatex.json"),
    "narratives": ("narratives_vidln.jsonl",),
    "pool": ("pool_internvid.jsonl",),
    "test": ("test_msrvtt.json", "test_kinetics.csv"),
    "qa": ("qa_nextqa.csv", "qa_msrvtt_qa.json", "map_vid_vidorID.json"),
}
# Truth-record fields each split's files are made from.
FIELDS = {
    "image_text": ("id", "index", "caption"),
    "labeled": ("id", "gold_captions", "short_caption"),
    "narratives": ("id", "index", "split", "narrative", "actor_narratives", "timed_narrative"),
    "pool": ("id", "alt_text"),
    "test": ("id", "index", "split", "gold_captions", "events"),
    "qa": ("id", "split", "questions"),
}
LAYOUTS = {"image_text": "coco", "labeled": "vatex", "narratives": "vidln", "pool": "internvid",
           "test": "msrvtt", "qa": "nextqa+msrvtt_qa"}
NEXTQA_COLUMNS = ("video", "frame_count", "width", "height", "question", "answer", "qid", "type",
                  "a0", "a1", "a2", "a3", "a4")


def timestamp(seconds: float) -> str:
  """"00:00:02.000": InternVid's HH:MM:SS.mmm."""
  millis = int(round(seconds * 1000))
  hours, millis = divmod(millis, 3_600_000)
  minutes, millis = divmod(millis, 60_000)
  return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def coco_captions(records: Sequence[dict], resolution: int) -> dict[str, Any]:
  return {
      "info": {"description": "vidistill synthetic world: single frames and their captions"},
      "licenses": [],
      "images": [{"id": r["index"], "file_name": f"{r['id']}.png", "height": resolution,
                  "width": resolution} for r in records],
      "annotations": [{"id": r["index"], "image_id": r["index"], "caption": r["caption"]}
                      for r in records],
  }


def vatex(records: Sequence[dict], key: str) -> list[dict[str, Any]]:
  """VATEX entries; `key` picks the captions: "gold_captions" or "short_caption"."""
  out = []
  for r in records:
    caps = r[key] if isinstance(r[key], list) else [r[key]]
    out.append({"videoID": r["id"], "enCap": list(caps)})
  return out


def vidln(records: Sequence[dict]) -> list[dict[str, Any]]:
  """VidLN lines: the published keys (actor_narratives ...) plus the whole narrative ("caption")
  and per-event video times ("timed_caption", seconds in the clip). Traces, keyframes and speech
  alignment do not exist here and are empty lists."""
  out = []
  for r in records:
    actors = [{"actor_name": a["actor_name"], "caption": a["caption"],
               "keyframe_selection_indices": [], "traces": [], "noun_segments": [],
               "time_alignment": []} for a in r["actor_narratives"]]
    out.append({"vidln_id": r["index"], "dataset_id": r["split"], "video_id": r["id"],
                "keyframe_names": [], "actor_narratives": actors, "caption": r["narrative"],
                "timed_caption": r["timed_narrative"],
                "actor_names": [a["actor_name"] for a in r["actor_narratives"]]})
  return out


def internvid(records: Sequence[dict], duration: float) -> list[dict[str, Any]]:
  return [{"YoutubeID": r["id"], "Start_timestamp": timestamp(0.0),
           "End_timestamp": timestamp(duration), "Caption": r["alt_text"]} for r in records]


def msrvtt(records: Sequence[dict], duration: float) -> dict[str, Any]:
  """videodatainfo: every gold caption variant is a sentence (the first is the canonical one)."""
  videos, sentences = [], []
  for r in records:
    videos.append({"category": 0, "url": f"synthetic://{r['split']}/{r['id']}",
                   "video_id": r["id"], "start time": 0.0, "end time": duration,
                   "split": "test", "id": r["index"]})
    for caption in r["gold_captions"]:
      sentences.append({"caption": caption, "video_id": r["id"], "sen_id": len(sentences)})
  return {"info": {"description": "vidistill synthetic world: retrieval / captioning test"},
          "videos": videos, "sentences": sentences}


KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


def kinetics_rows(records: Sequence[dict], duration: float) -> list[list[Any]]:
  """Kinetics CSV rows for zero-shot action classification: a clip's class is its FIRST event's
  action (time order, then left to right), so chance is 1 / #actions (world.json)."""
  return [[vocab.ACTION_CLASS[r["events"][0]["action"]], r["id"], 0, int(math.ceil(duration)),
           "test"] for r in records]


def nextqa_rows(records: Sequence[dict], num_frames: int, resolution: int) -> list[list[Any]]:
  rows = []
  for r in records:
    for qid, q in enumerate(r["questions"]):
      rows.append([r["id"], num_frames, resolution, resolution, q["question"], q["answer_index"],
                   qid, q["type"], *q["candidates"]])
  return rows


def nextqa_video_map(records: Sequence[dict]) -> dict[str, str]:
  """map_vid_vidorID.json: NExT-QA's video -> path (no extension) under the video root."""
  return {r["id"]: f"{r['split']}/{r['id']}" for r in records}


def msrvtt_qa(records: Sequence[dict]) -> list[dict[str, Any]]:
  """MSRVTT-QA entries; video_id is the MSR-VTT number N of "videoN", as in the real files."""
  out = []
  for r in records:
    number = int(r["id"].removeprefix("video"))
    for q in r["questions"]:
      out.append({"answer": q["answer"], "category_id": q["category_id"], "id": len(out),
                  "question": q["question"], "video_id": number})
  return out


def split_files(split: str, records: Sequence[dict], config: Any) -> dict[str, str]:
  """{file name: content} of a split's annotation files."""
  duration = config.num_frames / config.fps
  if split == "image_text":
    return {FILES[split][0]: dumps(coco_captions(records, config.resolution))}
  if split == "labeled":
    return {FILES[split][0]: dumps(vatex(records, "gold_captions")),
            FILES[split][1]: dumps(vatex(records, "short_caption"))}
  if split == "narratives":
    return {FILES[split][0]: dumps_lines(vidln(records))}
  if split == "pool":
    return {FILES[split][0]: dumps_lines(internvid(records, duration))}
  if split == "test":
    return {FILES[split][0]: dumps(msrvtt(records, duration)),
            FILES[split][1]: csv_text(KINETICS_COLUMNS, kinetics_rows(records, duration))}
  if split == "qa":
    rows = nextqa_rows(records, config.num_frames, config.resolution)
    return {FILES[split][0]: csv_text(NEXTQA_COLUMNS, rows),
            FILES[split][1]: dumps(msrvtt_qa(records)),
            FILES[split][2]: dumps(nextqa_video_map(records))}
  raise ValueError(f"unknown split {split!r}; expected one of {list(FILES)}")


def dumps(obj: Any) -> str:
  return json.dumps(obj, ensure_ascii=False) + "\n"


def dumps_lines(items: Iterable[Any]) -> str:
  return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(header)
  writer.writerows(rows)
  return buffer.getvalue()


def write_text(path: str, text: str) -> None:
  """Writes under a temporary name and renames: a reader never sees half a file."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = f"{path}.partial"
  with open(tmp, "w", encoding="utf-8", newline="") as f:
    f.write(text)
  os.replace(tmp, path)
