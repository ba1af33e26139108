"""A stage's record in its workdir: config.json with the shapes it trained on.

The train command writes `<workdir>/config.json` (the whole stage config plus a `shapes` block:
frames, resolution, tokens per frame, vocabulary) next to the orbax checkpoints, so a workdir alone
is enough to rebuild the model: `vidistill.models.trained.load(workdir)` (used by caption, eval,
the pipeline and the next stage).
"""
from __future__ import annotations

import os
from typing import Any

import ml_collections

from vidistill import fs
from vidistill.models import trained as trained_lib
from vidistill.train import stage_input

CONFIG_FILE = trained_lib.CONFIG_FILE
read_config = trained_lib.read_config
example_batch = trained_lib.example_batch


def write_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  fs.makedirs(workdir)
  path = os.path.join(workdir, CONFIG_FILE)
  tmp = path + ".tmp"
  with fs.open(tmp, "w", encoding="utf-8") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  fs.replace(tmp, path)  # gs://: copy then delete; config.json appears whole.
  return path


def input_size(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(frames per clip, resolution) of the stage's training data."""
  if config.data.source in ("world", "text"):
    info = stage_input.world_info(config.data.world)["config"]
    still = config.data.source == "text" or config.data.get("split") == "image_text"
    frames = 1 if still else int(info["num_frames"])
    return frames, int(info["resolution"])
  return int(config.data.num_frames), int(config.data.resolution)


def stage_shapes(config: ml_collections.ConfigDict, vocab: Any) -> trained_lib.Shapes:
  """The shapes block a stage records: what its data feeds the model."""
  frames, resolution = input_size(config)
  path = config.data.get("vocab") or os.path.join(config.data.world, "vocab.model")
  return trained_lib.make_shapes(config, num_frames=frames, resolution=resolution,
                                 vocab=fs.abspath(path), vocab_size=vocab.vocab_size)


def check_init_shapes(config: ml_collections.ConfigDict, shapes: trained_lib.Shapes) -> None:
  """A stage starting from `config.init.checkpoint` must read frames of the size and text of the
  vocabulary the previous stage's model was trained with."""
  if not config.init.get("checkpoint"):
    return
  previous = trained_lib.read_shapes(trained_lib.read_config(config.init.checkpoint))
  where = f"init.checkpoint {config.init.checkpoint}"
  for name in ("resolution", "vocab_size"):
    mine, theirs = getattr(shapes, name), getattr(previous, name)
    if mine != theirs:
      raise trained_lib.ConfigError(
          f"this stage's data gives {name}={mine} but the model in {where} was trained with "
          f"{name}={theirs}; train on data of the same {name.replace('_', ' ')}")
