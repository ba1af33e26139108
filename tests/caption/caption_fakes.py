"""Test helpers for the captioning job: a deterministic fake captioner, a small video corpus.

The fake caption names the video's mean colour and a hash of its frames, so a test can check
that every caption belongs to its own video and that two runs saw identical frames.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
import wave

import numpy as np

from vidistill.data import video_write

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_PATH = os.path.join(REPO, "configs", "caption", "pseudo_caption.py")
_COLOUR = re.compile(r"colour (\d+) (\d+) (\d+)")


def like_a_checkpoint(config, num_frames=4, resolution=32):
  """What loading a real checkpoint does to the config (frames / resolution left at 0 become the
  model's): the fake captioner's model 'was trained' on 4 frames of 32 px."""
  config.num_frames = config.num_frames or num_frames
  config.resolution = config.resolution or resolution
  return config


def load_config(arg: str = "tiny"):
  spec = importlib.util.spec_from_file_location("pseudo_caption_config", CONFIG_PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return like_a_checkpoint(module.get_config(arg))


class FakeCaptioner:
  """Greedy: a pure function of (frames, prompt). Sampling: also of (rng_seed, position)."""

  def __init__(self, name: str = "fake-vlm@step100", delay_s: float = 0.0,
               decode_settings: dict | None = None, num_samples: int = 1):
    self.name = name
    self.decode_settings = decode_settings or {"method": "greedy", "max_decode_len": 16}
    self.delay_s, self.num_samples = delay_s, num_samples
    self.calls: list[tuple[int, int]] = []  # (batch size, rng_seed) per call.

  def caption(self, frames, prompts, rng_seed):
    assert frames.dtype == np.uint8 and frames.ndim == 5 and frames.shape[-1] == 3
    assert len(prompts) == len(frames)
    self.calls.append((len(frames), rng_seed))
    if self.delay_s:
      time.sleep(self.delay_s)
    out = []
    for position, (video, prompt) in enumerate(zip(frames, prompts)):
      mean = np.round(video.reshape(-1, 3).mean(0)).astype(int)
      digest = hashlib.sha1(video.tobytes()).hexdigest()[:10]
      base = f"{prompt.split()[0]} colour {mean[0]} {mean[1]} {mean[2]} id {digest}"
      samples = []
      for s in range(self.num_samples):
        text = base
        if self.decode_settings.get("method") == "sample":
          rng = np.random.default_rng([rng_seed, position, s])
          text += " " + " ".join(rng.choice(["red", "ball", "moves", "left", "up"], size=3))
        samples.append((text, -0.5 * len(text.split())))
      out.append(samples)
    return out


def colour_of(caption: str) -> np.ndarray:
  return np.array([int(c) for c in _COLOUR.search(caption).groups()])


def clip_colour(index: int) -> tuple[int, int, int]:
  """Distinct flat colours, far apart, for clip `index`."""
  return ((40 + 53 * index) % 216 + 20, (200 - 37 * index) % 216 + 20, (90 + 71 * index) % 216 + 20)


def clip_frames(index: int, num_frames: int = 8, size: int = 32) -> np.ndarray:
  frames = np.empty((num_frames, size, size, 3), np.uint8)
  frames[:] = clip_colour(index)
  frames[:, : size // 4, : size // 4] = (index * 7) % 256  # A corner mark: frames differ per clip.
  return frames


def write_clip(path: str, index: int, num_frames: int = 8, size: int = 32) -> str:
  return video_write.write_video(path, clip_frames(index, num_frames, size), fps=8.0, bit_exact=True)


def write_audio_only(path: str) -> str:
  """A valid WAV file: audio, no video stream."""
  with wave.open(path, "wb") as f:
    f.setnchannels(1)
    f.setsampwidth(2)
    f.setframerate(8000)
    f.writeframes(np.zeros(4000, np.int16).tobytes())
  return path


def make_corpus(root: str, num_good: int = 10) -> dict:
  """Writes `num_good` clips plus one of each bad kind under `root`; returns what it wrote.

  Returns {"good": {id: (relative path, mean colour)}, "bad": {id: (relative path, kind)}}.
  """
  os.makedirs(os.path.join(root, "clips"), exist_ok=True)
  good = {}
  for i in range(num_good):
    rel = f"clips/clip{i:03d}.mp4"
    write_clip(os.path.join(root, rel), i)
    good[f"clip{i:03d}"] = (rel, tuple(clip_frames(i).reshape(-1, 3).mean(0)))
  bad = {"corrupt": ("clips/corrupt.mp4", "corrupt"), "empty": ("clips/empty.mp4", "empty"),
         "audio": ("clips/audio.wav", "no_video"), "missing": ("clips/missing.mp4", "missing")}
  with open(os.path.join(root, bad["corrupt"][0]), "wb") as f:
    # An mp4 header, then garbage: a damaged video, not some other kind of file.
    f.write(b"\x00\x00\x00\x20ftypisom" + np.random.default_rng(0).bytes(4000))
  open(os.path.join(root, bad["empty"][0]), "wb").close()
  write_audio_only(os.path.join(root, bad["audio"][0]))
  return {"good": good, "bad": bad}


def write_simple_manifest(path: str, corpus: dict, bad_positions=(2, 5, 7, 9)) -> list[str]:
  """JSONL manifest: good clips in order with the bad ones interleaved; returns the id order."""
  items = [(k, rel) for k, (rel, _) in corpus["good"].items()]
  for position, (key, (rel, _)) in zip(bad_positions, corpus["bad"].items()):
    items.insert(position, (key, rel))
  with open(path, "w", encoding="utf-8") as f:
    for key, rel in items:
      f.write(json.dumps({"id": key, "path": rel}) + "\n")
  return [k for k, _ in items]
