"""Captioners the throughput benchmarks drive the captioning job with.

`TinyVLMCaptioner` is a real video VLM (random weights, vidistill.models.vlm `predict_batch`,
greedy decode on the CPU): the job competes with real model compute for the cores, as in
production. `FixedCostCaptioner` sleeps a fixed time per video: the model cost as a constant, for
measuring the job's own overheads (and for quick tests).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from vidistill.benchmarks import mfu
from vidistill.models import build
from vidistill.models import vlm


class TinyVLMCaptioner:
  """The Captioner protocol over a randomly initialised VLM of `mfu.SIZES[size]`'s shapes."""

  def __init__(self, size: str = "short", *, num_frames: int, resolution: int,
               max_len: int = 16, seed: int = 0):
    s = dict(mfu.SIZES[size], frames=num_frames, res=resolution, batch=1)
    self.model = build.build(mfu.vlm_config(s), vocab_size=s["vocab"], dtype="float32")
    self.params = mfu.init_params(self.model, jax.tree.map(jnp.asarray,
                                                           mfu.example_batch("vlm", s, seed)))
    self.prompt_len = s["prompt"]
    self.decode = vlm.DecodeConfig(method="greedy", max_decode_len=max_len)
    self.name = f"tiny-vlm-{size}"
    self.decode_settings = {"method": "greedy", "max_decode_len": max_len}

  def caption(self, frames: np.ndarray, prompts: list[str],
              rng_seed: int) -> list[list[tuple[str, float]]]:
    del rng_seed  # Greedy.
    prompt = np.zeros((len(frames), self.prompt_len), np.int32)
    prompt[:, :len(prompts[0].split())] = 2 + np.arange(len(prompts[0].split())) % 100
    tokens, aux = self.model.predict_batch(self.params, {"video": frames,
                                                         "prompt_tokens": prompt}, self.decode)
    tokens, scores = np.asarray(tokens), np.asarray(aux["scores"][:, 0])
    return [[(" ".join(str(t) for t in row if t > 1), float(score))]
            for row, score in zip(tokens, scores)]


class FixedCostCaptioner:
  """Sleeps `seconds_per_video` per video and names the frames' mean: a constant-cost model."""

  def __init__(self, seconds_per_video: float):
    self.seconds_per_video = seconds_per_video
    self.name = f"fixed-cost-{seconds_per_video}s"
    self.decode_settings = {"method": "greedy"}

  def caption(self, frames: np.ndarray, prompts: list[str],
              rng_seed: int) -> list[list[tuple[str, float]]]:
    del prompts, rng_seed
    time.sleep(self.seconds_per_video * len(frames))
    return [[(f"mean {float(v.mean()):.2f}", 0.0)] for v in frames]
