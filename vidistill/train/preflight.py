"""What `vidistill train` checks before it writes anything into its workdir.

A wrong command must not damage a workdir: a rerun into a trained workdir with another config is
refused before config.json is rewritten (naming the fields that differ), and the inputs a run will
need (the step count, the world, the init checkpoint and its shapes) are checked before the workdir
is created, so a run that cannot start leaves nothing behind.

A rerun may change what does not change the trained model's meaning (RERUN_MAY_CHANGE: a longer
schedule, logging, checkpoint and eval cadence); anything else needs `--restart`, which deletes
the workdir's checkpoints, config.json, metrics and eval results and trains from step 0.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
from absl import logging

from vidistill import fs
from vidistill.config_args import ConfigError
from vidistill.parallel import partitioning
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import restore
from vidistill.train import stage_input

# Fields a rerun may change and still resume (prefixes of dotted paths).
RERUN_MAY_CHANGE = (
    "total_steps", "total_examples", "total_epochs",  # A longer (or shorter) schedule.
    "log_every", "checkpoint_every", "keep_checkpoints", "async_checkpoints", "eval_every",
    "eval_config", "tensorboard", "prefetch", "steps_per_call", "peak_flops_per_device",
    "on_nonfinite",
    "schedule.warmup_steps",  # Stage configs derive it from the step count for short runs.
    # Where the same examples come from: streamed or in memory, the batches are the same.
    "data.in_memory", "data.read_threads",
)
# What --restart deletes: everything `vidistill train` writes into a workdir.
_RUN_FILES = (ckpt_lib.SUBDIR, restore.CONFIG_FILE, "eval")
_EVENTS_PREFIX = "events.out.tfevents."


class WorkdirConflictError(ConfigError):
  """The workdir holds a run trained with a config that this command would contradict."""


def flat(config: Any, prefix: str = "") -> dict[str, Any]:
  """{"optim.lr": 0.001, ...} of a ConfigDict or the dict read from config.json (JSON values)."""
  if isinstance(config, ml_collections.ConfigDict):
    config = json.loads(config.to_json_best_effort())
  out = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and value:
      out.update(flat(value, name + "."))
    else:
      out[name] = value
  return out


def config_changes(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
  """(field, old value, new value) of every field that differs.

  Not changes: a field `new` leaves None that the run fills in itself (dataset_size); a field the
  old config lacks and the new one leaves empty (an option added since, at its off default); a
  field the new config lacks (an option since removed).
  """
  a, b = flat(old), flat(new)
  changes = []
  for key in sorted(set(a) | set(b)):
    if key == "dataset_size" and b.get(key) is None:
      continue
    if key not in b or (key not in a and b[key] in (None, "", [], {}, False)):
      continue
    if a.get(key, "<absent>") != b.get(key, "<absent>"):
      changes.append((key, a.get(key, "<absent>"), b.get(key, "<absent>")))
  return changes


def has_checkpoint(workdir: str) -> bool:
  directory = os.path.join(workdir, ckpt_lib.SUBDIR)
  return fs.isdir(directory) and any(
      name.isdigit() and fs.isfile(os.path.join(directory, name, ckpt_lib.COMMIT_FILE))
      for name in fs.listdir(directory))


def check_workdir(config: ml_collections.ConfigDict, workdir: str, *, restart: bool = False
                  ) -> None:
  """Refuses (WorkdirConflictError) a run whose config contradicts the workdir's trained one.

  With `restart`, deletes the workdir's previous run instead. A workdir without a complete
  checkpoint has nothing to protect: its leftovers are overwritten.
  """
  if not fs.isdir(workdir):
    return
  if restart:
    _delete_run(workdir)
    return
  config_path = os.path.join(workdir, restore.CONFIG_FILE)
  if not has_checkpoint(workdir) or not fs.isfile(config_path):
    return
  with fs.open(config_path, encoding="utf-8") as f:
    trained = json.load(f)
  changes = config_changes(trained, config)
  blocking = [c for c in changes if not c[0].startswith(RERUN_MAY_CHANGE)]
  if blocking:
    shown = "; ".join(f"{k}: {v!r} there, {w!r} now" for k, v, w in blocking[:6])
    more = f" (and {len(blocking) - 6} more)" if len(blocking) > 6 else ""
    raise WorkdirConflictError(
        f"--workdir {workdir} holds a run trained with another config: {shown}{more}. Rerun with "
        "its config to resume, choose a new --workdir, or pass --restart to delete that run and "
        "start over")
  for key, old, new in changes:
    logging.info("train: resuming with %s changed from %r to %r", key, old, new)


def _delete_run(workdir: str) -> None:
  for name in fs.listdir(workdir):
    path = os.path.join(workdir, name)
    if name in _RUN_FILES or name.startswith(_EVENTS_PREFIX):
      logging.warning("train --restart: deleting %s", path)
      if fs.isdir(path):
        fs.rmtree(path)
      else:
        fs.remove(path)


def check_steps(config: ml_collections.ConfigDict) -> None:
  for unit in ("steps", "examples", "epochs"):
    value = config.get(f"total_{unit}")
    if value is not None and not value > 0:
      raise ConfigError(f"config.total_{unit}={value!r} must be positive (the `steps=` argument "
                        "of a stage config sets total_steps)")


def check_world(config: ml_collections.ConfigDict) -> None:
  if config.data.get("source") == "world":
    if not config.data.get("world"):
      raise ConfigError("config.data.world is empty: give the synthetic world directory, e.g. "
                        "--config configs/train/visual_adaptation.py:tiny,world=/tmp/world")
    stage_input.world_info(config.data.world)


def check_init(config: ml_collections.ConfigDict, model: Any) -> None:
  """The init checkpoint exists and its parameters fit the model (shapes only, nothing read)."""
  if not config.init.get("checkpoint"):
    return
  frames, resolution = restore.input_size(config)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          restore.example_batch(config, frames, resolution))
  try:
    ckpt_lib.check_params(config.init.checkpoint, partitioning.unbox(shapes["params"]),
                          strict=bool(config.init.get("strict", True)),
                          params_map=config.init.get("params_map"))
  except ckpt_lib.CheckpointError as e:
    raise ckpt_lib.CheckpointError(f"config.init.checkpoint (the `init=` argument): {e}") from None
