"""`vidistill data`: make the synthetic video world, look inside data, turn videos into shards.

sub-commands:

  synth    Write the synthetic world (videos, images, truth, annotation files in the real data
           sets' layouts, shards) to --workdir; a directory that already holds a complete world is
           kept unless --overwrite.
             vidistill data synth --config configs/data/synthetic.py:tiny --workdir /tmp/world
             vidistill data synth --config configs/data/synthetic.py:default,seed=1 \
                 --workdir /tmp/world --num_workers 2 --config.num_frames=8

  inspect  Describe PATH: a world directory (clips per split, chance levels, 3 sample clips with
           all their captions), a shard file or pattern (example count and fields), or a video
           file (duration, fps, size, codec).
             vidistill data inspect /tmp/world
             vidistill data inspect '/tmp/world/shards/pool-*.tfrecord'
             vidistill data inspect /tmp/world/videos/test/video0.mp4

  convert  Read an annotation file with one of the readers (--format: msrvtt, vatex, vidln,
           nextqa, msrvtt_qa, internvid, coco_captions, ...), decode each record's video from
           --videos, and write shards to --output (a path prefix).
             vidistill data convert --format msrvtt \
                 --annotations /tmp/world/annotations/test_msrvtt.json \
                 --videos /tmp/world/videos/test --output /tmp/shards/msrvtt_test \
                 --num_frames 8 --resolution 32 --num_shards 2
           (The shards a training stage streams, its examples decoded and tokenised, are written
           by `vidistill train --config <stage config> --write_shards PREFIX`.)
"""
from __future__ import annotations

import glob
import os
import sys
from typing import Any, Sequence

from absl import flags
from absl import logging

from vidistill import flags_lib

SUBCOMMANDS = ("synth", "inspect", "convert")
_VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
_SAMPLES = 3


def _define_flags() -> None:
  if "overwrite" in flags.FLAGS:  # Already defined by an earlier run() in this process.
    return
  if "config" not in flags.FLAGS:
    flags_lib.define_config_and_workdir(
        workdir_help="synth: the world directory to write (created).")
  flags.DEFINE_bool("overwrite", False, "synth: rewrite a --workdir that holds a complete world.")
  flags.DEFINE_integer("num_workers", None, "synth: worker processes (default: CPU count).")
  flags.DEFINE_string("format", None, "convert: the reader of --annotations (see vidistill.data."
                      "annotations.READERS), e.g. msrvtt, vatex, nextqa.")
  flags.DEFINE_string("annotations", None, "convert: the annotation file to read.")
  flags.DEFINE_string("videos", None, "convert: the folder holding the videos the file names.")
  flags.DEFINE_string("output", None, "convert: path prefix of the shards written "
                      "(PREFIX-00000-of-0000N.tfrecord).")
  flags.DEFINE_integer("num_frames", 8, "convert: frames sampled uniformly from each video.")
  flags.DEFINE_integer("resolution", None, "convert: square side of the frames (resize + centre "
                       "crop); default: the videos' own size.")
  flags.DEFINE_integer("num_shards", 1, "convert: number of shard files written.")


def run(prog: str, argv: Sequence[str]) -> None:
  """Entry point used by vidistill.cli: `vidistill data <sub-command> [flags]`."""
  _define_flags()
  if flags.FLAGS.is_parsed():  # A second run in one process (tests, notebooks) starts afresh:
    for name in [n for n in flags.FLAGS if n.startswith("config.")]:
      delattr(flags.FLAGS, name)  # ml_collections defines --config.x flags at each parse.
    flags.FLAGS.unparse_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__]],
                        main)


def main(positional: Sequence[str]) -> None:
  if not positional:
    raise flags_lib.UsageError(f"give a sub-command: one of {', '.join(SUBCOMMANDS)} "
                               "(`vidistill data --help` shows examples)")
  name, args = positional[0], list(positional[1:])
  if name == "synth":
    _expect_args(name, args, 0)
    synth()
  elif name == "inspect":
    _expect_args(name, args, 1)
    inspect(args[0])
  elif name == "convert":
    _expect_args(name, args, 0)
    convert()
  else:
    raise flags_lib.UsageError(f"unknown sub-command {name!r}; expected one of "
                               f"{', '.join(SUBCOMMANDS)}")


def _expect_args(name: str, args: Sequence[str], count: int) -> None:
  if len(args) != count:
    what = "no positional arguments" if count == 0 else "exactly one PATH"
    raise flags_lib.UsageError(f"{name} takes {what}, got {list(args)}")


# ------------------------------------------------------------------------------------------------
# synth

def synth() -> None:
  from vidistill.config_args import ConfigError
  from vidistill.data.synthetic import world

  config = flags_lib.config_from_flags()
  workdir = flags_lib.workdir_from_flags()
  workers = flags.FLAGS.num_workers or os.cpu_count() or 1
  try:
    world.synth(config, workdir, overwrite=flags.FLAGS.overwrite, num_workers=workers)
  except ConfigError as e:
    raise flags_lib.UsageError(str(e)) from None


# ------------------------------------------------------------------------------------------------
# inspect

def inspect(path: str) -> None:
  if os.path.isdir(path):
    if not os.path.isfile(os.path.join(path, "world.json")):
      raise flags_lib.UsageError(f"{path} is a directory without world.json: not a synthetic "
                                 "world (give a world directory, a shard pattern or a video file)")
    print(describe_world(path))
  elif path.lower().endswith(_VIDEO_EXTENSIONS):
    from vidistill.data import video_io
    if not os.path.isfile(path):
      raise flags_lib.UsageError(f"no video file {path}")
    try:
      info = video_io.video_info(path)
    except video_io.VideoError as e:
      raise flags_lib.UsageError(str(e)) from None
    print(f"video {path}")
    for key, value in info.items():
      print(f"  {key:<10} {value}")
  else:
    print(describe_shards(path))


def describe_world(path: str) -> str:
  """Counts per split, chance levels and a few sample clips with every caption kind."""
  from vidistill.data.synthetic import world

  info = _read_json(os.path.join(path, "world.json"))
  status = "complete" if world.is_complete(path) else f"INCOMPLETE (no {world.DONE} file)"
  lines = [f"synthetic world {path} ({status}): v{info['version']}, seed {info['seed']}, "
           f"{info['num_frames']} frames of {info['resolution']} px at {info['fps']} fps",
           "", f"{'split':<11} {'clips':>7} {'shards':>6}  {'layout':<17} annotations"]
  for split, s in info["splits"].items():
    lines.append(f"{split:<11} {s['size']:>7} {s['num_shards']:>6}  {s['layout']:<17} "
                 f"{', '.join(s['annotations'])}")
  lines += ["", "chance levels:"]
  lines += [f"  {k:<31} {v:.4f}" for k, v in sorted(info["chance"].items())]
  split = next((s for s in ("test", "labeled", "pool", "narratives", "qa")
                if info["splits"][s]["size"]), None)
  if split is not None and world.is_complete(path):
    lines += ["", f"sample clips ({split}):"]
    for record in world.load_truth(path, split)[:_SAMPLES]:
      lines += _describe_record(record)
  return "\n".join(lines)


def _describe_record(record: dict[str, Any]) -> list[str]:
  lines = [f"  {record['id']}" + (f"  (distractor of {record['distractor_of']}: "
                                  f"{record['distractor_kind']})" if record.get("distractor_of")
                                  else "")]
  fields = [("gold", record["gold_caption"])]
  fields += [("gold (variant)", c) for c in record["gold_captions"][1:]]
  fields += [("short", record["short_caption"]), ("alt-text", record["alt_text"]),
             ("narrative", record["narrative"])]
  fields += [(f"frame {i}", c) for i, c in enumerate(record["frame_captions"])]
  fields += [(f"event {e['start_frame']}-{e['end_frame']}", e["text"]) for e in record["events"]]
  for q in record.get("questions", []):
    fields.append((f"QA {q['type']}", f"{q['question']} -> {q['answer']} "
                   f"(choices: {' | '.join(q['candidates'])})"))
  lines += [f"    {name:<15} {text}" for name, text in fields]
  return lines


def describe_shards(pattern: str) -> str:
  from vidistill.data import shards

  paths = sorted(glob.glob(pattern))
  if not paths:
    raise flags_lib.UsageError(f"nothing matches {pattern!r}: give a world directory, a shard file "
                               "or pattern (quote the *), or a video file")
  count = shards.count_examples(paths)
  first = next(iter(shards.read_shards(paths)), None)
  lines = [f"{len(paths)} shard file(s) matching {pattern}: {count} examples"]
  if first is not None:
    lines.append("fields of the first example:")
    for key, value in first.items():
      lines.append(f"  {key:<18} {_summary(value)}")
  return "\n".join(lines)


def _summary(value: Any) -> str:
  shape = getattr(value, "shape", None)
  if shape is not None and len(shape):
    return f"{value.dtype} {list(shape)}"
  if isinstance(value, (list, tuple)):
    return f"{len(value)} items, first: {str(value[0])[:80]!r}" if value else "[]"
  return repr(value if not isinstance(value, bytes) else value[:40])[:100]


def _read_json(path: str) -> Any:
  import json
  with open(path, encoding="utf-8") as f:
    return json.load(f)


# ------------------------------------------------------------------------------------------------
# convert

def convert() -> None:
  """Annotation file + video folder -> shards of {"id", "frames", captions / QA fields}."""
  from vidistill.data import annotations
  from vidistill.data import prefetch
  from vidistill.data import shards
  from vidistill.data import video_io

  fmt, ann, videos, output = (flags.FLAGS[k].value for k in ("format", "annotations", "videos",
                                                            "output"))
  missing = [f"--{k}" for k, v in (("format", fmt), ("annotations", ann), ("videos", videos),
                                   ("output", output)) if not v]
  if missing:
    raise flags_lib.UsageError(f"convert needs {', '.join(missing)}; see `vidistill data --help`")
  if fmt not in annotations.READERS:
    raise flags_lib.UsageError(f"--format={fmt!r} is not a known reader; known: "
                               f"{', '.join(sorted(annotations.READERS))}")
  if not os.path.isdir(videos):
    raise flags_lib.UsageError(f"--videos={videos!r} is not a directory")
  if flags.FLAGS.num_frames < 1 or flags.FLAGS.num_shards < 1:
    raise flags_lib.UsageError("--num_frames and --num_shards must be >= 1")
  try:
    records = annotations.READERS[fmt](ann)
  except (annotations.AnnotationError, FileNotFoundError) as e:
    raise flags_lib.UsageError(str(e)) from None
  if not records:
    raise flags_lib.UsageError(f"{ann}: no records")

  def decode(record):
    found = annotations.resolve_video(record, videos)
    return video_io.read_video(found.path, flags.FLAGS.num_frames,
                               resolution=flags.FLAGS.resolution, window=found.window)

  failures: list[str] = []

  def examples():
    for record, frames in prefetch.prefetch_map(decode, records, num_workers=4):
      if isinstance(frames, Exception):
        failures.append(f"{record.video_id}: {frames}")
        continue
      yield convert_example(record, frames, annotations.record_id(record))

  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  paths = shards.write_shards(examples(), output, flags.FLAGS.num_shards)
  for failure in failures[:10]:
    logging.warning("convert: skipped %s", failure)
  done = len(records) - len(failures)
  if not done:
    raise flags_lib.UsageError(f"no video of {ann} could be read from {videos}; first error: "
                               f"{failures[0]}")
  print(f"converted {done} of {len(records)} records ({len(failures)} skipped) into "
        f"{len(paths)} shard(s): {output}-*")


def convert_example(record: Any, frames: Any, example_id: str) -> dict[str, Any]:
  """A shard example from a VideoRecord and its decoded frames (only the fields it has)."""
  example: dict[str, Any] = {"id": example_id, "video_id": record.video_id, "frames": frames}
  if record.captions:
    example["captions"] = list(record.captions)
  for key in ("question", "answer", "label", "split"):
    if getattr(record, key):
      example[key] = getattr(record, key)
  if record.candidates:
    example["candidates"] = list(record.candidates)
  if record.answer_index is not None:
    example["answer_index"] = record.answer_index
  return example
