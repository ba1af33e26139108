"""Reading a captioning job's output: the captions that feed the dual encoder, and job status.

The job (vidistill/caption/) writes it; training and the pipeline read it here, below caption in
the layering.

Only committed units (those with a done record) are read, so a job that is still running, or
crashed, shows exactly the units it finished: never a half-written one, never one twice.

A dual-encoder config names its caption source as an output directory (+ prompt name):
  source = caption_source("/data/pseudo_captions", prompt="short", num_frames=8, resolution=224)
  task = vidistill.data.tasks.contrastive_task("pseudo", source, vocab, caption_key="captions")
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterator

from vidistill import fs
from vidistill.data import caption_rows
from vidistill.data.records import VideoRecord

# The job's output layout (vidistill/caption/commit.py writes it):
#   <output>/units.jsonl, captions/unit-000012.<ext>, failures/unit-000012.jsonl, done/unit-000012.json
PLAN_FILE = "units.jsonl"
CAPTIONS, FAILURES, DONE = "captions", "failures", "done"


def unit_name(index: int) -> str:
  return f"unit-{index:06d}"


def done_path(output_dir: str, index: int) -> str:
  return os.path.join(output_dir, DONE, unit_name(index) + ".json")


def read_done(output_dir: str, index: int) -> dict[str, Any] | None:
  """The unit's done record, or None if the unit is not (validly) committed.

  A record whose files are missing or have another size (deleted or damaged by hand) does not
  count: the unit is redone.
  """
  path = done_path(output_dir, index)
  try:
    with fs.open(path, encoding="utf-8") as f:
      record = json.load(f)
  except FileNotFoundError:
    return None
  except (json.JSONDecodeError, UnicodeDecodeError):
    return None  # Cannot happen through atomic_write; a hand-edited record is redone.
  for key in ("captions", "failures"):
    entry = record.get(key, {})
    file = os.path.join(output_dir, str(entry.get("file", "")))
    if not fs.isfile(file) or fs.getsize(file) != entry.get("bytes"):
      return None
  return record


def done_records(output_dir: str) -> dict[int, dict[str, Any]]:
  """Every valid done record in the output directory, by unit index."""
  records = {}
  for path in sorted(fs.glob(os.path.join(output_dir, DONE, "unit-*.json"))):
    stem = os.path.basename(path)[len("unit-"):-len(".json")]
    if stem.isdigit():
      record = read_done(output_dir, int(stem))
      if record is not None:
        records[int(stem)] = record
  return records




def iter_rows(output_dir: str, prompt: str | None = None) -> Iterator[dict[str, Any]]:
  """Every caption row of every committed unit, in unit order then row order.

  `prompt` keeps the rows of one prompt, by its name in config.prompts ("short") or its text.
  """
  if not fs.isdir(output_dir):
    raise FileNotFoundError(f"{output_dir}: no such caption output directory (the --output of "
                            "`vidistill caption`)")
  matched, names = False, set()
  for _, record in sorted(done_records(output_dir).items()):
    path = os.path.join(output_dir, record["captions"]["file"])
    for row in caption_rows.read_rows(path, record["format"]):
      if prompt is None or prompt in (row["prompt_name"], row["prompt"]):
        matched = True
        yield row
      else:
        names.add(row["prompt_name"])
  if prompt is not None and not matched and names:
    raise ValueError(f"{output_dir}: no captions for prompt {prompt!r}; its prompts are "
                     f"{sorted(names)}")


def read_captions(output_dir: str, prompt: str | None = None) -> dict[str, list[str]]:
  """{video_id: [captions]} over committed units; per video, prompts in name order then samples."""
  captions: dict[str, list[str]] = {}
  for row in iter_rows(output_dir, prompt):
    captions.setdefault(row["video_id"], []).append(row["caption"])
  return captions


def caption_records(output_dir: str, prompt: str | None = None,
                    split: str = "train") -> list[VideoRecord]:
  """One VideoRecord per captioned video, in manifest order: `path` and window name exactly the
  frames that were captioned (the decoded file, not the manifest's spelling), `captions` its
  pseudo-captions. Feeds `vidistill.data.tasks.records_source` (see `caption_source`)."""
  records: dict[str, VideoRecord] = {}
  captions: dict[str, list[str]] = {}
  for row in iter_rows(output_dir, prompt):
    key = row["video_id"]
    if key not in records:
      records[key] = VideoRecord(
          video_id=key, path=row["file"], start=row["file_start"], end=row["file_end"],
          split=split, extra={"checkpoint": row["checkpoint"], "manifest_path": row["path"],
                              "manifest_window": (row["start"], row["end"])})
    captions.setdefault(key, []).append(row["caption"])
  return [dataclasses.replace(r, captions=tuple(captions[k])) for k, r in records.items()]


def caption_source(output_dir: str, *, num_frames: int, resolution: int,
                   prompt: str | None = None, split: str = "train"):
  """A seqio source of (frames, pseudo-captions) for the dual encoder's contrastive task.

  Yields "id", "frames", "caption" (the first) and "captions" (all, one drawn per epoch by
  `tasks.contrastive_task(..., caption_key="captions")`). For video-file input only: for
  example-shard input, join `read_captions` with the shards by id instead.
  """
  from vidistill.data import tasks  # pylint: disable=g-import-not-at-top  (seqio, TensorFlow)
  records = caption_records(output_dir, prompt, split)
  unreadable = [r for r in records if not fs.isfile(r.path)]
  if unreadable:
    raise ValueError(
        f"{output_dir}: {len(unreadable)} captioned videos are not local files any more (e.g. "
        f"{unreadable[0].video_id!r} from {unreadable[0].path!r}); videos from example shards: "
        "join read_captions() with the shards by id; remote or moved videos: copy them back")
  return tasks.records_source({split: records}, "", num_frames=num_frames, resolution=resolution)


def read_failures(output_dir: str) -> list[dict[str, Any]]:
  """The failure rows of committed units (video_id, path, window, kind, error, reason)."""
  rows = []
  for _, record in sorted(done_records(output_dir).items()):
    rows += caption_rows.read_rows(os.path.join(output_dir, record["failures"]["file"]), "jsonl")
  return rows


def status(output_dir: str) -> dict[str, Any]:
  """Units committed / total, videos captioned and failed so far, over all processes."""
  plan = os.path.join(output_dir, PLAN_FILE)
  with fs.open(plan, encoding="utf-8") as f:
    header = json.loads(f.readline())
  done = done_records(output_dir)
  return {"units_total": header["num_units"], "units_done": len(done),
          "entries_total": header["num_entries"],
          "videos_done": sum(r.get("videos", 0) for r in done.values()),
          "videos_failed": sum(r.get("failed", 0) for r in done.values()),
          "complete": len(done) == header["num_units"]}
