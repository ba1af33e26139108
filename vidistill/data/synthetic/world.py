"""Writes a whole synthetic world to a directory (`vidistill data synth`), and reads it back.

    DIR/world.json  videos/<split>/<id>.mp4  images/<id>.png  truth/<split>.jsonl
    DIR/annotations/...  shards/<split>-00000-of-0000N.tfrecord  DONE (last)

Everything is first written under DIR/.tmp-synth/, moved into place, and DONE is written last: a
directory without DONE is incomplete, whatever else it holds. Work is split into one task per
shard file (split, shard); tasks run in worker processes, each rendering, encoding and writing its
clips and its part of the truth file, so the output is identical for any number of workers.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from typing import Any, Iterator

from absl import logging
import ml_collections
import numpy as np

from vidistill import __version__
from vidistill import orphans
from vidistill.data.synthetic import clips
from vidistill.data.synthetic import config_check
from vidistill.data.synthetic import corpus
from vidistill.data.synthetic import export
from vidistill.data.synthetic import questions
from vidistill.data.synthetic import render
from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.scene import Scene

WORLD_VERSION = 1
DONE = "DONE"
_TMP = ".tmp-synth"
_TEST_SCENES = "test_scenes.jsonl"


def is_complete(workdir: str) -> bool:
  return os.path.isfile(os.path.join(workdir, DONE))


def synth(config: ml_collections.ConfigDict, workdir: str, *, overwrite: bool = False,
          num_workers: int = 1) -> bool:
  """Writes the world of `config` to `workdir`; returns False if a complete one was kept."""
  config_check.validate(config)
  if is_complete(workdir) and not overwrite:
    logging.info("synth: %s is a complete world (it has %s); kept as is. Pass --overwrite to "
                 "write it again.", workdir, DONE)
    return False
  os.makedirs(workdir, exist_ok=True)
  if os.path.exists(os.path.join(workdir, DONE)):
    os.remove(os.path.join(workdir, DONE))  # From here on the directory is incomplete.
  tmp = os.path.join(workdir, _TMP)
  shutil.rmtree(tmp, ignore_errors=True)  # Left by an interrupted run: never trusted.
  os.makedirs(tmp)

  start = time.time()
  tasks = _plan(config, tmp)
  cpu = _run(tasks, num_workers)
  for split in clips.SPLITS:
    if config.splits[split]:
      _finish_split(config, tmp, split)
  os.remove(os.path.join(tmp, _TEST_SCENES))
  truth = {split: load_truth(tmp, split) for split in clips.SPLITS if config.splits[split]}
  corpus.train_vocabulary(corpus.sentences(truth), os.path.join(tmp, corpus.VOCAB_FILE),
                          config.vocab_size)
  export.write_text(os.path.join(tmp, "world.json"),
                    json.dumps(world_info(config), indent=2, sort_keys=True) + "\n")
  for name in sorted(os.listdir(tmp)):
    target = os.path.join(workdir, name)
    if os.path.isdir(target):
      shutil.rmtree(target)
    elif os.path.exists(target):
      os.remove(target)
    os.replace(os.path.join(tmp, name), target)
  os.rmdir(tmp)
  export.write_text(os.path.join(workdir, DONE),
                    f"vidistill {__version__} world v{WORLD_VERSION}\n")
  total = sum(config.splits[s] for s in clips.SPLITS)
  logging.info("synth: wrote %d clips/images to %s in %.1f s (%.1f CPU-s in the clip tasks: "
               "%.1f ms per clip)", total, workdir, time.time() - start, cpu,
               1e3 * cpu / max(total, 1))
  return True


def _plan(config: ml_collections.ConfigDict, tmp: str) -> list[dict[str, Any]]:
  """One task per shard file; the test split's scenes are drawn here (they depend on each other)."""
  entries = clips.test_scenes(config) if config.splits.test else []
  lines = [{"scene": e["scene"].to_json(), **{k: v for k, v in e.items() if k != "scene"}}
           for e in entries]
  export.write_text(os.path.join(tmp, _TEST_SCENES), export.dumps_lines(lines))
  tasks = []
  for split in clips.SPLITS:
    size, num = config.splits[split], config.num_shards[split]
    for shard in range(num if size else 0):
      tasks.append({"config": config.to_dict(), "tmp": tmp, "split": split, "shard": shard,
                    "num_shards": num, "start": shard * size // num,
                    "stop": (shard + 1) * size // num})
  tasks.sort(key=lambda t: t["start"] - t["stop"])  # Longest first: the last task ends soonest.
  return tasks


def _run(tasks: list[dict[str, Any]], num_workers: int) -> float:
  """Runs the tasks (in worker processes if num_workers > 1); returns their total CPU seconds."""
  total = sum(t["stop"] - t["start"] for t in tasks)
  done, cpu, start = 0, 0.0, time.time()

  def progress(result: tuple[int, float]) -> None:
    nonlocal done, cpu
    done += result[0]
    cpu += result[1]
    rate = done / max(time.time() - start, 1e-9)
    logging.info("synth: %d / %d clips (%.0f clips/s, ETA %.0f s)", done, total, rate,
                 (total - done) / max(rate, 1e-9))

  if num_workers <= 1 or len(tasks) <= 1:
    for task in tasks:
      progress(build_part(task))
    return cpu
  # Workers come from a fresh server process that imports TensorFlow once (~10 s) before forking
  # them: cheaper than an import per worker (spawn), and safe whatever this process has run (a
  # plain fork after TensorFlow has started its threads can deadlock).
  context = multiprocessing.get_context("forkserver")
  context.set_forkserver_preload(["vidistill.tf_loaded", "vidistill.data.synthetic.world",
                                  "vidistill.data.shards"])
  # Workers end with the forkserver, which ends with this process (vidistill/orphans.py).
  with context.Pool(min(num_workers, len(tasks)), initializer=orphans.exit_with_parent) as pool:
    for result in pool.imap_unordered(build_part, tasks):
      progress(result)
  return cpu


def build_part(task: dict[str, Any]) -> tuple[int, float]:
  """Renders, encodes and shards clips [start, stop) of one split; returns (clips, CPU seconds)."""
  cpu_start = time.process_time()
  from vidistill.data import shards  # TensorFlow: imported in the worker, after any fork.
  from vidistill.data import video_write

  config = ml_collections.ConfigDict(task["config"])
  tmp, split, shard = task["tmp"], task["split"], task["shard"]
  entries = _read_test_scenes(tmp) if split == "test" else None
  truth_part = os.path.join(tmp, "truth", f"{split}.part-{shard:05d}.jsonl")
  media = os.path.join(tmp, "images" if split == "image_text" else os.path.join("videos", split))
  write_media = split in media_splits(config)
  for folder in ((media,) if write_media else ()) + (os.path.dirname(truth_part),
                                                      os.path.join(tmp, "shards")):
    os.makedirs(folder, exist_ok=True)

  def examples() -> Iterator[dict[str, Any]]:
    with open(truth_part, "w", encoding="utf-8") as truth:
      for scene, record in clips.split_records(config, split, task["start"], task["stop"],
                                               entries):
        if split == "image_text":
          frames = render.render(scene, [record["frame"]])
          if write_media:
            _write_png(os.path.join(media, f"{record['id']}.png"), frames[0])
        else:
          frames = render.render(scene)
          if write_media:
            # bit_exact: a seed names the world's bytes, and evaluations decode these files.
            video_write.write_video(os.path.join(media, f"{record['id']}.mp4"), frames,
                                    config.fps, config.video_codec, bit_exact=True)
        truth.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        yield shard_example(split, record, frames)

  prefix = os.path.join(tmp, "shards", f".part-{split}-{shard:05d}")
  (written,) = shards.write_shards(examples(), prefix, 1, format="tfrecord",
                                    frames_encoding=config.shard_frames_encoding)
  os.replace(written, os.path.join(
      tmp, "shards", f"{split}-{shard:05d}-of-{task['num_shards']:05d}.tfrecord"))
  return task["stop"] - task["start"], time.process_time() - cpu_start


def shard_example(split: str, record: dict[str, Any], frames: np.ndarray) -> dict[str, Any]:
  """The shard example of a clip: frames and the text its split's annotation file gives.

  The pool carries alt-text only (its gold captions stay in truth/pool.jsonl, for the "gold"
  upper bound), like the real unlabeled corpora.
  """
  example = {"id": record["id"], "frames": frames}
  if split == "image_text":
    example["caption"] = record["caption"]
  elif split == "labeled":
    example.update(gold_captions=record["gold_captions"], short_caption=record["short_caption"])
  elif split == "narratives":
    example.update(narrative=record["narrative"], gold_captions=record["gold_captions"],
                   actor_narratives=[a["caption"] for a in record["actor_narratives"]])
  elif split == "pool":
    example["alt_text"] = record["alt_text"]
  else:  # test, qa
    example["gold_captions"] = record["gold_captions"]
  return example


def _write_png(path: str, image: np.ndarray) -> None:
  from PIL import Image  # Pillow comes with matplotlib; its PNG encoder writes no timestamps.
  Image.fromarray(image).save(path, format="PNG")


def _read_test_scenes(tmp: str) -> list[dict[str, Any]]:
  with open(os.path.join(tmp, _TEST_SCENES), encoding="utf-8") as f:
    lines = [json.loads(line) for line in f]
  return [{**e, "scene": Scene.from_json(e["scene"])} for e in lines]


def _finish_split(config: ml_collections.ConfigDict, tmp: str, split: str) -> None:
  """Joins the truth parts in order and writes the split's annotation files from them."""
  folder = os.path.join(tmp, "truth")
  parts = sorted(p for p in os.listdir(folder) if p.startswith(f"{split}.part-"))
  records = []
  with open(os.path.join(folder, f"{split}.jsonl"), "w", encoding="utf-8") as joined:
    for part in parts:
      with open(os.path.join(folder, part), encoding="utf-8") as f:
        for line in f:
          joined.write(line)
          # Only the fields the annotation files use: a large pool's full records would not fit.
          record = json.loads(line)
          records.append({k: record[k] for k in export.FIELDS[split]})
      os.remove(os.path.join(folder, part))
  for name, content in export.split_files(split, records, config).items():
    export.write_text(os.path.join(tmp, "annotations", name), content)


def chance_levels(config: ml_collections.ConfigDict) -> dict[str, float]:
  """What guessing scores on each test (the floor a model must beat)."""
  n_test = config.splits.test
  short = (vocab.SHORT_PHRASE_DIRECTED if config.get("short_caption", "any") == "first"
           else vocab.SHORT_PHRASE)
  num_counts = config.max_objects - config.min_objects + 1
  chance = {
      "qa_multiple_choice": 1.0 / questions.NUM_CHOICES,
      "qa_open_action": 1.0 / len(config.actions),   # first / after / before / while questions.
      "qa_open_count": 1.0 / num_counts,
      "qa_open_which": 1.0 / (len(config.colours) * len(config.shapes)),
      "qa_open_colour": 1.0 / (len(config.colours) - 1),
      "first_action_accuracy": 1.0 / len(config.actions),
      # test_kinetics.csv labels a clip by its first action (uniform over actions; top-5 likewise).
      "zero_shot_top1": 1.0 / len(config.actions),
      "zero_shot_top5": min(1.0, 5.0 / len(config.actions)),
      "short_caption_action_accuracy": 1.0 / len({short[a] for a in config.actions}),
  }
  if n_test:
    for k in (1, 5, 10):
      chance[f"retrieval_r{k}"] = min(1.0, k / n_test)
  return {k: round(v, 6) for k, v in chance.items()}


def media_splits(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Splits whose clips are also written as media files (configs without the key: all)."""
  return tuple(config.get("media_splits", clips.SPLITS))


def world_info(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The content of world.json (no timestamps: same config => same bytes)."""
  splits = {}
  for split in clips.SPLITS:
    size = config.splits[split]
    splits[split] = {
        "size": size, "num_shards": config.num_shards[split] if size else 0,
        "layout": export.LAYOUTS[split],
        "annotations": [f"annotations/{n}" for n in export.FILES[split]] if size else [],
        "media": ("images" if split == "image_text" else f"videos/{split}")
                 if size and split in media_splits(config) else None,
        "truth": f"truth/{split}.jsonl" if size else None,
        "shards": f"shards/{split}-*-of-{config.num_shards[split]:05d}.tfrecord" if size else None,
    }
  return {
      "version": WORLD_VERSION, "generator": f"vidistill {__version__}",
      "seed": config.seed, "resolution": config.resolution, "num_frames": config.num_frames,
      "fps": config.fps, "duration_s": config.num_frames / config.fps,
      "config": _jsonable(config.to_dict()), "splits": splits,
      "vocab": {"shapes": list(config.shapes),
                "colours": {c: list(vocab.COLOURS[c]) for c in config.colours},
                "sizes": dict(config.sizes), "actions": list(config.actions),
                "backgrounds": list(config.backgrounds)},
      "chance": chance_levels(config),
  }


def _jsonable(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  return value


# ------------------------------------------------------------------------------------------------
# Reading a world back.

def load_world(workdir: str) -> dict[str, Any]:
  """world.json of a complete world; FileNotFoundError naming what is missing otherwise."""
  if not is_complete(workdir):
    raise FileNotFoundError(f"{workdir} is not a complete synthetic world (no {DONE} file); run "
                            f"`vidistill data synth --config configs/data/synthetic.py:tiny "
                            f"--workdir {workdir}`")
  with open(os.path.join(workdir, "world.json"), encoding="utf-8") as f:
    return json.load(f)


def load_truth(workdir: str, split: str) -> list[dict[str, Any]]:
  """The truth records of a split (every caption kind, events, scene) in clip order."""
  if split not in clips.SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {clips.SPLITS}")
  with open(os.path.join(workdir, "truth", f"{split}.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def regenerate_frames(record: dict[str, Any]) -> np.ndarray:
  """[T, H, W, 3] uint8 frames of a truth record's clip (image_text: its one frame), re-rendered."""
  scene = Scene.from_json(record["scene"])
  return render.render(scene, [record["frame"]] if "frame" in record else None)
