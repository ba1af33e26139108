"""Where a pipeline run keeps things: the workdir's layout, the step names the runner, the steps
and the report share, and the DONE marker that makes a step complete.

    world/                      the synthetic world (its own DONE)
    seed_<k>/<step>/            every training, captioning and evaluation step of seed k
    timings.json                seconds of every step, and the wall clock (timings.py)
    report.md report.json scaling.png samples.png
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Any

import ml_collections

DONE = "DONE"
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "configs")
VLM_STAGES = ("text_pretrain", "image_pretrain", "visual_adaptation", "language_adaptation")
# Which prompt each VLM answers a caption request with: stage 2 learnt captions as instructions.
DESCRIBE = "describe the video in detail."
CAPTION = "caption en:"


class PipelineError(RuntimeError):
  """A step cannot run: a missing input, an unknown step name."""


@dataclasses.dataclass(frozen=True)
class Context:
  config: ml_collections.ConfigDict
  workdir: str
  seed: int = 0

  @property
  def world(self) -> str:
    return self.config.world.dir or os.path.join(self.workdir, "world")

  def dir(self, step: str) -> str:
    return os.path.join(self.workdir, f"seed_{self.seed}", step)

  def world_info(self) -> dict[str, Any]:
    with open(os.path.join(self.world, "world.json"), encoding="utf-8") as f:
      return json.load(f)


def load_config(relpath: str, arg: str) -> ml_collections.ConfigDict:
  """configs/<relpath>:get_config(arg), loaded by path (configs/ is not a package)."""
  path = os.path.join(CONFIGS, relpath)
  spec = importlib.util.spec_from_file_location(f"vidistill_cfg_{relpath}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def is_done(path: str) -> bool:
  return os.path.isfile(os.path.join(path, DONE))


def fraction_name(fraction: float) -> str:
  return "1" if fraction >= 1 else f"1of{round(1 / fraction)}"


# The VLMs of the adaptation ablation: report row -> (training step, its caption prompt).
VLMS = {"image": ("image_pretrain", CAPTION), "visual": ("visual_adaptation", CAPTION),
        "visual_language": ("language_adaptation", DESCRIBE),
        "visual_lm_unfrozen": ("visual_adaptation_lm_unfrozen", CAPTION)}


def dual_encoder_runs(config: ml_collections.ConfigDict) -> list[tuple[str, float]]:
  """(source, fraction) of every dual encoder: each source on the whole pool, then the curve."""
  d = config.dual_encoder
  runs = [(s, 1.0) for s in d.sources]
  runs += [(s, float(f)) for s in d.scaling_sources for f in d.fractions if float(f) < 1]
  return runs


def de_step_name(source: str, fraction: float) -> str:
  return f"de_{source}_{fraction_name(fraction)}"
