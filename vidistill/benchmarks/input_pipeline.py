"""Input pipeline and captioning job throughput.

1. clips/s of the data pipeline (video_io.read_video: decode + uniform frame sampling + resize,
   on prefetch_map threads, then batched) against raw PyAV decoding of the same files in one loop
   (every frame to RGB, nothing else): the price of sampling and resizing, and what the threads
   win back.
2. clips/s of the captioning job end to end (caption/job.run_job: manifest, units, prefetch,
   batches, the captioner, commits) against the captioner alone on frames decoded beforehand: the
   goal is >= 0.9, i.e. decoding hides behind the model.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import tempfile
import time
from typing import Any

import av
import numpy as np

from vidistill.benchmarks import captioners
from vidistill.benchmarks import report
from vidistill.data import prefetch
from vidistill.data import video_io
from vidistill.data import video_write

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPTION_CONFIG = os.path.join(_REPO, "configs", "caption", "pseudo_caption.py")

SIZES = {
    "short": dict(clips=8, src_frames=16, src_size=64, frames=4, res=32, batch=2, unit=4,
                  workers=2, model="short", max_len=8, batch_sweep=(1, 4)),
    # The job's start (threads, the first batch decoded before the model can run) is a fixed
    # cost that a job over millions of clips amortises: enough clips to see its steady state.
    "full": dict(clips=256, src_frames=64, src_size=160, frames=8, res=64, batch=8, unit=16,
                 workers=2, model="short", max_len=16, batch_sweep=(1, 4, 16, 32)),
}


def write_clips(folder: str, count: int, num_frames: int, size: int, seed: int = 0) -> list[str]:
  """`count` mp4 clips of moving noise blocks (so the codec has real work); their paths."""
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(count):
    base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    frames = np.stack([np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), t, axis=1)
                       for t in range(num_frames)])
    paths.append(video_write.write_video(os.path.join(folder, f"clip{i:04d}.mp4"), frames, fps=8.0))
  return paths


def raw_decode_clips_per_s(paths: list[str]) -> float:
  """Baseline: one loop, PyAV decodes every frame of every file to an RGB array."""
  start = time.perf_counter()
  for path in paths:
    with av.open(path) as container:
      for frame in container.decode(video=0):
        frame.to_ndarray(format="rgb24")
  return len(paths) / (time.perf_counter() - start)


def pipeline_clips_per_s(paths: list[str], s: dict[str, Any]) -> float:
  """read_video (sample + resize) on prefetch_map threads, stacked into batches."""
  start = time.perf_counter()
  batch, done = [], 0
  read = lambda p: video_io.read_video(p, s["frames"], resolution=s["res"])
  for _, frames in prefetch.prefetch_map(read, paths, num_workers=s["workers"], buffer=16):
    if isinstance(frames, Exception):
      raise frames
    batch.append(frames)
    if len(batch) == s["batch"]:
      np.stack(batch)
      done, batch = done + len(batch), []
  return (done + len(batch)) / (time.perf_counter() - start)


def caption_config(s: dict[str, Any]):
  spec = importlib.util.spec_from_file_location("pseudo_caption_config", CAPTION_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("tiny")
  config.unit_size, config.batch_size = s["unit"], s["batch"]
  config.num_frames, config.resolution = s["frames"], s["res"]
  config.prefetch.num_workers, config.prefetch.buffer = s["workers"], 4 * s["batch"]
  config.prompts = {"short": "caption en:"}
  config.decode.max_decode_len = s["max_len"]
  return config


def decoder_alone_clips_per_s(captioner: Any, paths: list[str], s: dict[str, Any]) -> float:
  """The captioner on frames decoded beforehand, in the job's batch size (the job's ceiling)."""
  frames = np.stack([video_io.read_video(p, s["frames"], resolution=s["res"]) for p in paths])
  captioner.caption(frames[:s["batch"]], ["caption en:"] * s["batch"], 0)  # Compile.
  start = time.perf_counter()
  for i in range(0, len(frames), s["batch"]):
    chunk = frames[i:i + s["batch"]]
    captioner.caption(chunk, ["caption en:"] * len(chunk), 0)
  return len(frames) / (time.perf_counter() - start)


def job_clips_per_s(captioner: Any, folder: str, s: dict[str, Any], out: str) -> float:
  from vidistill.caption import job  # pylint: disable=g-import-not-at-top
  summary = job.run_job(caption_config(s), captioner, folder, out)
  if summary.videos_done != len(glob.glob(os.path.join(folder, "*.mp4"))):
    raise RuntimeError(f"the job captioned {summary.videos_done} videos: {summary}")
  return summary.videos_done / summary.elapsed_s


def run(full: bool = False) -> report.Result:
  s = SIZES["full" if full else "short"]
  figures, details = [], {"sizes": s}
  with tempfile.TemporaryDirectory() as tmp:
    folder = os.path.join(tmp, "clips")
    os.makedirs(folder)
    paths = write_clips(folder, s["clips"], s["src_frames"], s["src_size"])
    raw_decode_clips_per_s(paths[:2])  # Warm the file cache and codec.
    raw = raw_decode_clips_per_s(paths)
    pipe = pipeline_clips_per_s(paths, s)
    figures.append(report.Figure(
        "input", f"read_video + prefetch_map ({s['workers']} threads) -> [B,{s['frames']},"
        f"{s['res']},{s['res']},3]", pipe, "raw PyAV decode loop", raw, unit="clips/s",
        note=f"{s['src_frames']} frames {s['src_size']}px h264 per clip"))
    captioner = captioners.TinyVLMCaptioner(s["model"], num_frames=s["frames"],
                                            resolution=s["res"], max_len=s["max_len"])
    alone = decoder_alone_clips_per_s(captioner, paths, s)
    job_rate = job_clips_per_s(captioner, folder, s, os.path.join(tmp, "out"))
    details.update(raw=raw, pipeline=pipe, decoder_alone=alone, job=job_rate)
    figures.append(report.Figure(
        "input", "caption job end to end (tiny VLM, greedy)", job_rate,
        "the VLM alone on pre-decoded frames", alone, unit="clips/s", goal=0.9 if full else None,
        note=f"batch {s['batch']}, {s['workers']} decode threads"))
    # Throughput against the batch size, the job and the VLM alone, each against batch 1.
    sweep = {}
    for batch in s["batch_sweep"]:
      sb = dict(s, batch=batch, unit=max(s["unit"], batch))
      sweep[batch] = {"alone": decoder_alone_clips_per_s(captioner, paths, sb),
                      "job": job_clips_per_s(captioner, folder, sb,
                                             os.path.join(tmp, f"out_b{batch}"))}
    details["batch_sweep"] = sweep
    first = s["batch_sweep"][0]
    for batch in s["batch_sweep"][1:]:
      for kind, label in (("alone", "the VLM alone"), ("job", "caption job end to end")):
        figures.append(report.Figure(
            "input", f"{label}, batch {batch} (tiny VLM, greedy)", sweep[batch][kind],
            f"the same at batch {first}", sweep[first][kind], unit="clips/s",
            note="throughput against the batch size"))
    # The same job with a constant-cost model 1.5x as slow per clip as the pipeline decodes (the
    # paper's model is far slower than that): does decoding hide behind the model?
    fixed = captioners.FixedCostCaptioner(1.5 / pipe)
    fixed_alone = decoder_alone_clips_per_s(fixed, paths, s)
    fixed_job = job_clips_per_s(fixed, folder, s, os.path.join(tmp, "out_fixed"))
    details.update(fixed_cost_alone=fixed_alone, fixed_cost_job=fixed_job)
    figures.append(report.Figure(
        "input", "caption job end to end (fixed-cost model, 1.5 x decode cost)", fixed_job,
        "the same model alone on pre-decoded frames", fixed_alone, unit="clips/s",
        goal=0.9 if full else None,
        note=f"model {1500.0 / pipe:.0f} ms/clip (sleep) = 1.5 x decode"))
  return report.Result("input_pipeline", figures, details)
