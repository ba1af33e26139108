"""Test helpers for the evaluators: a world of solid-colour mp4 clips and fake models that know it.

Every clip is one colour of PALETTE (plus a small moving dark square, so it is a real video); its
captions, questions and labels name that colour. The fakes read a clip's colour back from its
decoded frames (nearest palette entry to the mean pixel), so the right answer of every evaluator is
known: the embedder maps a clip and its captions to the same vector (R@1 = 100), the VLM captions
a clip with its first reference and answers colour questions correctly. `shift=k` makes them see
the colour k places further round the palette instead: every answer wrong, ranks predictable.

`write_world` writes the clips and annotation files in the real data sets' layouts (MSR-VTT
videodatainfo and 1k-A CSV, VATEX, NExT-QA + video map, MSRVTT-QA, Kinetics CSV) and, under
`synthetic/`, the synthetic world's file names, as `vidistill data synth` writes them.
"""
from __future__ import annotations

import csv
import json
import os
import re
import zlib

import numpy as np
import pytest

from vidistill.data import video_write
from vidistill.eval.evaluators import common

PALETTE = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
           "yellow": (230, 220, 30), "magenta": (210, 40, 200), "cyan": (40, 210, 210),
           "white": (240, 240, 240), "orange": (240, 140, 20)}
COLOURS = tuple(PALETTE)
_WORD = re.compile(r"[a-z]+")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Batches of 3 over 8 clips: two full batches and a padded one.
SETTINGS = common.Settings(num_frames=4, resolution=32, batch_size=3, num_workers=2, buffer=4)


def captions_of(colour: str) -> list[str]:
  return [f"a {colour} video with a small square moving right",
          f"the {colour} clip shows a square sliding to the right",
          f"a dark square moves right over a {colour} background"]


def clip_frames(colour: str, num_frames: int = 6, size: int = 32) -> np.ndarray:
  frames = np.empty((num_frames, size, size, 3), np.uint8)
  frames[:] = PALETTE[colour]
  for t in range(num_frames):
    frames[t, 12:16, 2 + 4 * t:6 + 4 * t] = 20
  return frames


def colour_of(video: np.ndarray) -> str:
  mean = np.asarray(video, np.float64).reshape(-1, 3).mean(0)
  distances = [np.linalg.norm(mean - np.array(PALETTE[c])) for c in COLOURS]
  return COLOURS[int(np.argmin(distances))]


def colour_in(text: str) -> str | None:
  for word in _WORD.findall(text.lower()):
    if word in PALETTE:
      return word
  return None


def shifted(colour: str, shift: int) -> str:
  return COLOURS[(COLOURS.index(colour) + shift) % len(COLOURS)]


def unit_vector(seed_text: str, dim: int = 16) -> np.ndarray:
  v = np.random.default_rng(zlib.crc32(seed_text.encode())).normal(size=dim)
  return v / np.linalg.norm(v)


class FakeEmbedder:
  """A dual encoder: a clip -> its colour's vector; a text -> the vector of the colour it names,
  plus a little text-specific noise (a clip's captions differ, so video-to-text has one best)."""

  def __init__(self, shift: int = 0, dim: int = 16, scale: float = 3.0):
    self.shift, self.dim, self.scale = shift, dim, scale
    self.video_batches: list = []   # (type, shape, number of devices) per embed_videos call.
    self.text_batches: list[list[str]] = []

  def video_vector(self, colour: str) -> np.ndarray:
    return unit_vector(shifted(colour, self.shift), self.dim)

  def text_vector(self, text: str) -> np.ndarray:
    colour = colour_in(text)
    base = unit_vector(colour, self.dim) if colour else np.zeros(self.dim)
    return base + 0.05 * unit_vector("noise " + text, self.dim)

  def embed_videos(self, frames):
    devices = len(frames.sharding.device_set) if hasattr(frames, "sharding") else 0
    self.video_batches.append((type(frames).__name__, tuple(frames.shape), devices))
    frames = np.asarray(frames)
    assert frames.dtype == np.uint8 and frames.ndim == 5 and frames.shape[-1] == 3
    # Unnormalised on purpose: the evaluators must normalise (cosine similarity).
    return self.scale * np.stack([self.video_vector(colour_of(v)) for v in frames])

  def embed_texts(self, texts):
    assert all(isinstance(t, str) for t in texts)
    self.text_batches.append(list(texts))
    return np.stack([self.text_vector(t) for t in texts]).astype(np.float32)


class FakeVLM:
  """A VLM: captions a clip with its colour's first caption; answers "what colour ..." with the
  colour; scores a candidate 0 when it names the clip's colour, -5 otherwise."""

  def __init__(self, shift: int = 0, tie: bool = False):
    self.shift, self.tie = shift, tie
    self.calls: list[tuple[str, int, list[str]]] = []

  def _colour(self, video) -> str:
    return shifted(colour_of(video), self.shift)

  def generate(self, frames, prompts):
    frames = np.asarray(frames)
    assert len(prompts) == len(frames)
    self.calls.append(("generate", len(frames), list(prompts)))
    out = []
    for video, prompt in zip(frames, prompts):
      colour = self._colour(video)
      out.append(captions_of(colour)[0] if prompt.startswith("caption") else f"The {colour}.")
    return out

  def score(self, frames, prompts, candidates):
    frames = np.asarray(frames)
    assert len(prompts) == len(frames) == len(candidates)
    self.calls.append(("score", len(frames), list(prompts)))
    scores = np.full((len(frames), len(candidates[0])), -5.0)
    for b, (video, options) in enumerate(zip(frames, candidates)):
      for c, text in enumerate(options):
        if self.tie or colour_in(text) == self._colour(video):
          scores[b, c] = 0.0
    return scores


# ------------------------------------------------------------------------------------------------
# The world on disk.

def write_json(path: str, obj) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(obj, f)
  return path


def write_csv(path: str, header, rows) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return path


def _clip(path: str, colour: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  video_write.write_video(path, clip_frames(colour), fps=4.0)


def msrvtt_videodatainfo(colours=COLOURS, split: str = "test") -> dict:
  videos, sentences = [], []
  for i, colour in enumerate(colours):
    videos.append({"category": 0, "url": f"https://www.youtube.com/watch?v=abcdefghij{i}",
                   "video_id": f"video{i}", "start time": 0.0, "end time": 1.5, "split": split,
                   "id": i})
    for caption in captions_of(colour):
      sentences.append({"caption": caption, "video_id": f"video{i}", "sen_id": len(sentences)})
  return {"info": {}, "videos": videos, "sentences": sentences}


def qa_rows(colours=COLOURS) -> list[list]:
  """NExT-QA rows: per clip a colour question (type DC) and a second one (type TN)."""
  rows = []
  for i, colour in enumerate(colours):
    others = [c for c in COLOURS if c != colour]
    for qid, qtype in enumerate(("DC", "TN")):
      answer = (i + qid) % 5
      candidates = others[qid:qid + 5]
      candidates = candidates[:answer] + [colour] + candidates[answer:4]
      rows.append([str(1000 + i), 6, 32, 32, f"what colour is the video ({qid})?", answer, qid,
                   qtype, *candidates])
  return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[dict[str, str], str]:
  """(paths of `write_world`, its root): one world per test module."""
  root = str(tmp_path_factory.mktemp("world"))
  return write_world(root), root


def write_world(root: str, colours=COLOURS) -> dict[str, str]:
  """Writes clips and annotation files under `root`; returns {name: path}."""
  paths = {}
  for i, colour in enumerate(colours):
    _clip(os.path.join(root, "msrvtt", "videos", "all", f"video{i}.mp4"), colour)
    _clip(os.path.join(root, "vatex", "videos", f"yt{i:09d}_000010_000020.mp4"), colour)
    _clip(os.path.join(root, "NExTVideo", "0000", f"{1000 + i}.mp4"), colour)
    _clip(os.path.join(root, "kinetics", "videos", "validate", f"{colour}_things",
                       f"kin{i:08d}_000005_000015.mp4"), colour)
  msrvtt = os.path.join(root, "msrvtt")
  paths["msrvtt"] = write_json(os.path.join(msrvtt, "MSRVTT_data.json"),
                                msrvtt_videodatainfo(colours))
  paths["msrvtt_1ka"] = write_csv(
      os.path.join(msrvtt, "MSRVTT_JSFUSION_test.csv"), ["key", "vid_key", "video_id", "sentence"],
      [[f"ret{i}", f"msr{i}", f"video{i}", captions_of(c)[1]] for i, c in enumerate(colours)])
  paths["vatex"] = write_json(
      os.path.join(root, "vatex", "vatex_validation_v1.0.json"),
      [{"videoID": f"yt{i:09d}_000010_000020", "enCap": captions_of(c), "chCap": ["视频"]}
       for i, c in enumerate(colours)])
  header = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
            "a0", "a1", "a2", "a3", "a4"]
  paths["nextqa"] = write_csv(os.path.join(root, "nextqa", "val.csv"), header, qa_rows(colours))
  write_json(os.path.join(root, "nextqa", "map_vid_vidorID.json"),
              {str(1000 + i): f"0000/{1000 + i}" for i in range(len(colours))})
  paths["nextoe"] = write_csv(
      os.path.join(root, "nextoe", "val.csv"),
      ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
       "additional_ref_answer"],
      [[str(1000 + i), 6, 32, 32, "what colour is it?", f"{c} colour", 0, "DC", c]
       for i, c in enumerate(colours)])
  write_json(os.path.join(root, "nextoe", "map_vid_vidorID.json"),
              {str(1000 + i): f"0000/{1000 + i}" for i in range(len(colours))})
  paths["msrvtt_qa"] = write_json(
      os.path.join(root, "msrvtt_qa", "test_qa.json"),
      [{"answer": c, "category_id": k % 2, "id": 2 * i + k, "question": q, "video_id": i}
       for i, c in enumerate(colours)
       for k, q in enumerate(("what colour is the video?", "who colours the video?"))])
  paths["kinetics"] = write_csv(
      os.path.join(root, "kinetics", "validate.csv"),
      ["label", "youtube_id", "time_start", "time_end", "split"],
      [[f"{c}_things", f"kin{i:08d}", 5, 15, "validate"] for i, c in enumerate(colours)])
  paths.update(write_synthetic_layout(os.path.join(root, "synthetic"), colours))
  return paths


def write_synthetic_layout(world: str, colours=COLOURS) -> dict[str, str]:
  """The file names `vidistill data synth` writes (and test_kinetics.csv), for the tiny configs."""
  for i, colour in enumerate(colours):
    _clip(os.path.join(world, "videos", "test", f"video{i}.mp4"), colour)
    _clip(os.path.join(world, "videos", "qa", f"video{100 + i}.mp4"), colour)
  ann = os.path.join(world, "annotations")
  paths = {"synthetic": world}
  write_json(os.path.join(ann, "test_msrvtt.json"), msrvtt_videodatainfo(colours))
  rows = qa_rows(colours)
  for row in rows:
    row[0] = f"video{100 + int(row[0]) - 1000}"
  write_csv(os.path.join(ann, "qa_nextqa.csv"),
             ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
              "a0", "a1", "a2", "a3", "a4"], rows)
  write_json(os.path.join(ann, "map_vid_vidorID.json"),
              {f"video{100 + i}": f"qa/video{100 + i}" for i in range(len(colours))})
  write_json(os.path.join(ann, "qa_msrvtt_qa.json"),
              [{"answer": c, "category_id": 0, "id": i, "question": "what colour is the video?",
                "video_id": 100 + i} for i, c in enumerate(colours)])
  write_csv(os.path.join(ann, "test_kinetics.csv"),
             ["label", "youtube_id", "time_start", "time_end", "split"],
             [[c, f"video{i}", 0, 1.5, "test"] for i, c in enumerate(colours)])
  return paths


def load_suite_config(suite: str, arg: str, like_a_checkpoint: bool = True):
  """configs/eval/<suite>.py's get_config(arg), as `--config` loads it."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path = os.path.join(REPO, "configs", "eval", f"{suite}.py")
  spec = importlib.util.spec_from_file_location(f"eval_config_{suite}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg)
  return fill_like_a_checkpoint(config) if like_a_checkpoint else config


def fill_like_a_checkpoint(config, num_frames=4, resolution=32):
  """What loading a real checkpoint does to a suite config (frames / resolution left at 0 become
  the model's): the fake models 'were trained' on 4 frames of 32 px."""
  config.num_frames = config.num_frames or num_frames
  config.resolution = config.resolution or resolution
  return config
