"""The pipeline's steps: each one a function of a `Context` that writes one directory.

A step is complete when its directory holds DONE (written last, with the step's seconds), so a
rerun skips it and a crash costs one step. Steps call the library (vidistill.train, .caption,
.eval), never subprocesses. The workdir's layout and the names shared with the runner and the
report: layout.py.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import ml_collections

from vidistill.config_args import ConfigError
from vidistill.pipeline import report
from vidistill.pipeline.layout import (CAPTION, DESCRIBE, VLM_STAGES, VLMS, Context, PipelineError,
                                       de_step_name, dual_encoder_runs, load_config)

@dataclasses.dataclass(frozen=True)
class Step:
  name: str
  run: Callable[[Context, str], None]   # (context, output directory) -> writes into it.
  per_seed: bool = True                 # False: once for all seeds (the world, the report).
  weight: float = 1.0                   # Relative cost, for the ETA before any step is timed.
  needs: tuple[str, ...] = ()           # Steps whose outputs it reads (run before it).

  def out_dir(self, ctx: Context) -> str:
    if self.name == "world":
      return ctx.world
    return ctx.dir(self.name) if self.per_seed else os.path.join(ctx.workdir, self.name)


# ------------------------------------------------------------------------------------------------
# Step functions.

def make_world(ctx: Context, out: str) -> None:
  from vidistill.data.synthetic import config_check  # pylint: disable=g-import-not-at-top
  from vidistill.data.synthetic import world  # pylint: disable=g-import-not-at-top
  if ctx.config.world.dir:
    world.load_world(out)  # A given world must be complete; this names what is missing.
    return
  config = load_config("data/synthetic.py", f"{ctx.config.world.config_arg},seed=0")
  for split, size in ctx.config.world.splits.items():
    config.splits[split] = int(size)
  if "media_splits" in ctx.config.world:
    config.media_splits = tuple(ctx.config.world.media_splits)
  if ctx.config.world.get("short_caption"):
    config.short_caption = ctx.config.world.short_caption
    config_check.validate(config)
  world.synth(config, out, num_workers=int(ctx.config.world.num_workers))


_LM_PARTS = {"t5": ("vit", "t5"), "paligemma": ("vit", "gemma")}  # config.vlm.lm -> its sizes


def _vlm_sizes(ctx: Context) -> dict[str, str]:
  """`config.vlm` size names that replace the stage variant's ("" keeps it), for the parts the
  chosen language model's VLM has."""
  sizes = dict(ctx.config.get("vlm", {}))
  lm = sizes.pop("lm", "t5")
  if lm not in _LM_PARTS:
    raise ConfigError(f"config.vlm.lm={lm!r} is not one of {sorted(_LM_PARTS)}")
  return {f"model.{part}.variant": name for part, name in sizes.items()
          if name and part in _LM_PARTS[lm]}


def _lm_arg(ctx: Context) -> str:
  """The VLM stage configs' `lm=` argument (configs/train/*.py): T5 or PaliGemma-shaped."""
  return f",lm={ctx.config.get('vlm', {}).get('lm', 't5')}"


def _lr(stage: ml_collections.ConfigDict) -> dict[str, float]:
  """The stage's peak learning rate over its config's (`lr` 0 or absent: keep the config's)."""
  lr = float(stage.get("lr", 0.0))
  if lr < 0:
    raise ConfigError(f"stage learning rate lr={lr} is negative; use 0 to keep the stage config's")
  return {"optim.lr": lr} if lr else {}


def _train(ctx: Context, stage: str, out: str, *, init: str = "", steps: int, batch: int,
           extra: str = "", variant: str = "", **overrides: Any) -> None:
  from vidistill.train import stage as train_stage_lib  # pylint: disable=g-import-not-at-top
  arg = (f"{variant or ctx.config.stage_variant},world={ctx.world},init={init},steps={steps},"
         f"batch={batch},seed={ctx.seed}{extra}")
  config = load_config(f"train/{stage}.py", arg)
  config.checkpoint_every = 0  # One final checkpoint: a step is the unit of restart.
  config.update_from_flattened_dict(overrides)
  train_stage_lib.train_stage(config, out)


def previous_stage(config: ml_collections.ConfigDict, stage: str) -> str:
  """The VLM stage `stage` starts from ("" = scratch); skipped stages pass through."""
  index = VLM_STAGES.index(stage)
  return next((p for p in reversed(VLM_STAGES[:index]) if int(config.stages[p].steps) > 0), "")


def _previous(ctx: Context, stage: str) -> str:
  """The workdir the VLM stage `stage` starts from ("" = scratch)."""
  prev = previous_stage(ctx.config, stage)
  return ctx.dir(prev) if prev else ""


def vlm_stage(stage: str) -> Callable[[Context, str], None]:
  def run(ctx: Context, out: str) -> None:
    s = ctx.config.stages[stage]
    extra = {}
    if stage == "text_pretrain":
      # One pass: every sentence pair seen once, only those tokenised (the world holds more).
      extra = {"data.text_splits": ctx.config.text_splits,
               "data.max_examples": int(s.steps) * int(s.batch)}
    _train(ctx, stage, out, init=_previous(ctx, stage), steps=int(s.steps), batch=int(s.batch),
           extra=_lm_arg(ctx), **extra, **_vlm_sizes(ctx), **_lr(s))
  run.__name__ = stage
  return run


def visual_adaptation_lm_unfrozen(ctx: Context, out: str) -> None:
  """Stage 1 with the language model trained too: what the paper's freezing guards against."""
  s = ctx.config.stages.visual_adaptation
  _train(ctx, "visual_adaptation", out, init=_previous(ctx, "visual_adaptation"),
         steps=int(s.steps), batch=int(s.batch), frozen=(), extra=_lm_arg(ctx),
         **_vlm_sizes(ctx), **_lr(s))


def _caption_config(ctx: Context, *, frames: int, prompt: str) -> ml_collections.ConfigDict:
  """frames=0: the checkpoint's; the resolution is always the checkpoint's."""
  c = ctx.config.caption
  config = load_config("caption/pseudo_caption.py", f"default,seed={ctx.seed},frames={frames}")
  config.batch_size = int(c.batch_size)
  config.unit_size = int(c.unit_size)
  config.decode.max_decode_len = int(c.max_decode_len)
  config.prefetch.num_workers = 1
  config.progress_every_s = 60.0
  config.prompts = ml_collections.ConfigDict({"caption": prompt})
  return config


def _caption_pool(ctx: Context, out: str, model_dir: str, *, frames: int, prompt: str) -> None:
  from vidistill.caption import captioner, job  # pylint: disable=g-import-not-at-top
  config = _caption_config(ctx, frames=frames, prompt=prompt)
  summary = job.run_job(config, captioner.load_captioner(config, model_dir),
                        os.path.join(ctx.world, "shards", "pool-*.tfrecord"), out)
  if summary.videos_failed:
    raise PipelineError(f"the captioning job failed on {summary.videos_failed} pool clips; see "
                        f"{out} (its failures file), fix and rerun")


def caption_pseudo(ctx: Context, out: str) -> None:
  """Pseudo-captions of the pool by the adapted VLM (stage 2), the paper's distilled captions."""
  _caption_pool(ctx, out, ctx.dir("language_adaptation"), frames=0, prompt=DESCRIBE)


def caption_frame(ctx: Context, out: str) -> None:
  """The image VLM's caption of one frame per clip (the "image captioner" baseline)."""
  _caption_pool(ctx, out, ctx.dir("image_pretrain"), frames=int(ctx.config.caption.frame_frames),
                prompt=CAPTION)


def dual_encoder(source: str, fraction: float) -> Callable[[Context, str], None]:
  def run(ctx: Context, out: str) -> None:
    d = ctx.config.dual_encoder
    captions = {"pseudo": ctx.dir("caption_pseudo"), "frame": ctx.dir("caption_frame")}
    overrides = {"data.captions_dir": captions[source]} if source in captions else {}
    _train(ctx, "dual_encoder", out, steps=int(d.steps), batch=int(d.batch),
           extra=f",source={source},fraction={fraction}", variant=d.variant, **overrides)
  return run


def _suite(ctx: Context, suite: str, model_dir: str, out: str, **entry_overrides: Any) -> None:
  from vidistill.eval import command as eval_command  # pylint: disable=g-import-not-at-top
  from vidistill.eval.evaluators import common  # pylint: disable=g-import-not-at-top
  e = ctx.config.eval
  # Every model is evaluated on the world's clips as they are (the image VLM, trained on single
  # frames, reads all of a clip's frames too); the resolution is the checkpoint's.
  config = load_config(f"eval/{suite}.py",
                       f"default,data={ctx.world},frames={ctx.world_info()['num_frames']},"
                       f"batch={int(e.batch)},max={int(e.max)}")
  config.prefetch.num_workers = 1
  for entry in config.evals.values():
    for key, value in entry_overrides.items():
      if key in entry:
        entry[key] = value
  eval_command.run_suite(config, common.load_model(config, model_dir), out, checkpoint=model_dir)


def eval_vlm(model_step: str, prompt: str) -> Callable[[Context, str], None]:
  def run(ctx: Context, out: str) -> None:
    _suite(ctx, "captioning", ctx.dir(model_step), os.path.join(out, "captioning"), prompt=prompt)
    _suite(ctx, "qa", ctx.dir(model_step), os.path.join(out, "qa"))
  return run


def eval_dual_encoder(model_step: str) -> Callable[[Context, str], None]:
  def run(ctx: Context, out: str) -> None:
    _suite(ctx, "retrieval", ctx.dir(model_step), os.path.join(out, "retrieval"))
    _suite(ctx, "zero_shot", ctx.dir(model_step), os.path.join(out, "zero_shot"))
  return run


def write_report(ctx: Context, out: str) -> None:
  report.write(ctx.config, ctx.workdir, out)


# ------------------------------------------------------------------------------------------------
# The list.

def build(config: ml_collections.ConfigDict) -> list[Step]:
  """Every step of `config`'s pipeline, in the order they run one at a time; `needs` lets
  independent ones run at once (config.workers)."""
  steps = [Step("world", make_world, per_seed=False, weight=1.0)]

  def add(name, run, weight, *needs):
    present = {s.name for s in steps}
    steps.append(Step(name, run, weight=weight,
                      needs=tuple(n for n in dict.fromkeys(("world", *needs)) if n in present)))

  for stage in VLM_STAGES:
    if int(config.stages[stage].steps) > 0:
      add(stage, vlm_stage(stage), int(config.stages[stage].steps) / 300,
          previous_stage(config, stage))
  vlms = dict(VLMS)
  if config.lm_unfrozen_ablation:
    add("visual_adaptation_lm_unfrozen", visual_adaptation_lm_unfrozen,
        int(config.stages.visual_adaptation.steps) / 300,
        previous_stage(config, "visual_adaptation"))
  else:
    vlms.pop("visual_lm_unfrozen")
  add("caption_pseudo", caption_pseudo, 1.0, "language_adaptation")
  add("caption_frame", caption_frame, 0.3, "image_pretrain")
  captions = {"pseudo": "caption_pseudo", "frame": "caption_frame"}
  for source, fraction in dual_encoder_runs(config):
    add(de_step_name(source, fraction), dual_encoder(source, fraction),
        int(config.dual_encoder.steps) / 300, captions.get(source, "world"))
  for row, (model_step, prompt) in vlms.items():
    add(f"eval_{row}", eval_vlm(model_step, prompt), 0.5, model_step)
  for source, fraction in dual_encoder_runs(config):
    name = de_step_name(source, fraction)
    add(f"eval_{name}", eval_dual_encoder(name), 0.2, name)
  steps.append(Step("report", write_report, per_seed=False, weight=0.1,
                    needs=tuple(s.name for s in steps)))
  return steps
