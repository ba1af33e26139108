"""A trained stage back from its workdir: config, vocabulary, model and parameters.

The train command writes `<workdir>/config.json` (the whole stage config) next to the orbax
checkpoints, so a workdir alone is enough to rebuild the model for captioning, evaluation or the
next stage: `load_trained(workdir)`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from vidistill import fs
from vidistill.config_args import ConfigError
from vidistill.models import build as build_lib
from vidistill.parallel import partitioning
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import stage_input

CONFIG_FILE = "config.json"


@dataclasses.dataclass
class Trained:
  config: ml_collections.ConfigDict
  vocab: Any
  model: Any
  params: Any


def write_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  fs.makedirs(workdir)
  path = os.path.join(workdir, CONFIG_FILE)
  tmp = path + ".tmp"
  with fs.open(tmp, "w", encoding="utf-8") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  fs.replace(tmp, path)  # gs://: copy then delete; config.json appears whole.
  return path


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(_workdir_of(workdir), CONFIG_FILE)
  if not fs.isfile(path):
    raise FileNotFoundError(f"{path} does not exist: {workdir!r} is not a workdir written by "
                            "`vidistill train` (it writes config.json beside checkpoints/)")
  with fs.open(path, encoding="utf-8") as f:
    return ml_collections.ConfigDict(json.load(f))


def _workdir_of(path: str) -> str:
  path = fs.abspath(path)
  for candidate in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
    if fs.isfile(os.path.join(candidate, CONFIG_FILE)):
      return candidate
  return path


def example_batch(config: ml_collections.ConfigDict, frames: int, resolution: int
                  ) -> dict[str, np.ndarray]:
  """A one-example batch of the model's input shapes (for init / eval_shape)."""
  lengths = dict(config.data.seq_lengths)
  video = np.zeros((1, frames, resolution, resolution, 3), np.uint8)
  if build_lib.family(config.model.kind) == "vlm":
    return {"video": video, "prompt_tokens": np.zeros((1, lengths.get("inputs", 32)), np.int32),
            "target_tokens": np.zeros((1, lengths.get("targets", 32)), np.int32)}
  return {"video": video, "text_tokens": np.zeros((1, lengths["targets"]), np.int32)}


def load_trained(workdir: str, *, vocab: Any = None) -> Trained:
  """The stage in `workdir` (or one of its checkpoint dirs), its latest complete checkpoint."""
  config = read_config(workdir)
  vocab = vocab or stage_input.vocabulary(config.data)
  model = build_lib.build(config.model, vocab_size=vocab.vocab_size, vocab=vocab,
                          text_length=int(config.data.seq_lengths.get("targets", 32)))
  frames, resolution = input_size(config)
  # Every parameter comes from the checkpoint, so the template needs shapes and dtypes only:
  # no init is run (eager flax init compiles each op; even jitted it is one large compile).
  shapes = jax.eval_shape(model.init, jax.random.key(0), example_batch(config, frames, resolution))
  # Replicated over every local device: evaluators may shard batches over all of them, and a jit
  # needs its arguments on one set of devices.
  everywhere = jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(jax.local_devices()), ("data",)), jax.sharding.PartitionSpec())
  template = jax.tree.map(lambda s: jax.device_put(np.zeros(s.shape, s.dtype), everywhere),
                          partitioning.unbox(shapes["params"]))
  try:
    params = ckpt_lib.load_params(workdir, template, strict=True)
  except ckpt_lib.CheckpointError as e:
    raise ckpt_lib.CheckpointError(
        f"the checkpoint in {workdir!r} does not fit the model its config.json describes ({e}); "
        "was config.json replaced? Restore the one the run was trained with") from None
  if hasattr(model, "with_params"):
    model = model.with_params(params)
  return Trained(config=config, vocab=vocab, model=model, params=params)


def check_input_size(config: ml_collections.ConfigDict, frames: int, resolution: int,
                     where: str) -> None:
  """Raises ConfigError when `frames` x `resolution` px clips cannot feed the model `config`
  trained: the ViT's position table fixes the resolution, the temporal table the most frames.

  `where` names the settings checked, e.g. "the caption config (frames=, res=)".
  """
  trained_frames, trained_resolution = input_size(config)
  if int(resolution) != trained_resolution:
    raise ConfigError(f"{where}: resolution {resolution} px, but the checkpoint was trained at "
                      f"{trained_resolution} px (its config.json); use {trained_resolution}")
  max_frames = int(config.model.get("video", {}).get("max_frames", 0) or 0)
  if max_frames and int(frames) > max_frames:
    raise ConfigError(f"{where}: {frames} frames, but the checkpoint's model reads at most "
                      f"{max_frames} (model.video.max_frames; trained with {trained_frames})")


def input_size(config: ml_collections.ConfigDict) -> tuple[int, int]:
  if config.data.source == "world":
    info = stage_input.world_info(config.data.world)["config"]
    return int(info["num_frames"]), int(info["resolution"])
  return int(config.data.num_frames), int(config.data.resolution)
