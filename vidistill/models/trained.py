"""A trained model back from its workdir: config, input shapes, vocabulary, model and parameters.

    trained = trained_lib.load("runs/s2")   # .config .shapes .vocab .model (bound) .params
    trained_lib.fill_input_settings(config, trained.shapes, where="--checkpoint runs/s2")

`vidistill train` writes `<workdir>/config.json` (the whole stage config) next to the orbax
checkpoints, with a `shapes` block: the frames per clip, frame resolution, visual tokens per
frame and the vocabulary the model was trained with. That block is the one source of truth for
captioning, evaluation and the next stage: their frame / resolution settings default to "from the
checkpoint"; a resolution or vocabulary that contradicts it is an error naming both, while the
frame count may be overridden (within the model's temporal table).

This is the one way caption, eval and the pipeline get a trained model (none of them imports the
training code).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from vidistill import fs
from vidistill.config_args import ConfigError
from vidistill.models import build as build_lib
from vidistill.models import checkpoint_params
from vidistill.models import vit

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class Shapes:
  """What a model was trained on; written by the stage into config.json's `shapes`."""
  num_frames: int                 # Frames per clip (1 for an image model).
  resolution: int                 # Square frame side, pixels.
  tokens_per_frame: int | None    # Visual tokens the VLM's LM reads per frame (None: pooled).
  vocab: str                      # SentencePiece model file of the text side.
  vocab_size: int                 # Its size (incl. extra ids): the embedding tables' rows.
  max_frames: int | None = None   # Most frames the VLM's temporal table takes (None: no limit).

  def as_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class Trained:
  config: ml_collections.ConfigDict
  shapes: Shapes
  vocab: Any
  model: Any
  params: Any


def tokens_per_frame(model: Mapping[str, Any], resolution: int) -> int | None:
  """Visual tokens per frame of a VLM config's video encoder at `resolution` (None otherwise)."""
  if build_lib.family(model.get("kind")) != "vlm":
    return None
  video = dict(model.get("video", {}))
  if video.get("spatial_tokens"):
    return int(video["spatial_tokens"])
  vit_config = dict(model.get("vit", {}))
  patch = vit_config.get("patch_size") or (
      vit.decode_variant(vit_config["variant"]).get("patch_size") if "variant" in vit_config
      else None)
  if not patch:
    return None
  return (resolution // patch[0]) * (resolution // patch[1])


def make_shapes(config: Mapping[str, Any], *, num_frames: int, resolution: int, vocab: str,
                vocab_size: int) -> Shapes:
  model = config["model"]
  video = dict(model.get("video", {})) if build_lib.family(model.get("kind")) == "vlm" else {}
  return Shapes(num_frames=int(num_frames), resolution=int(resolution),
                tokens_per_frame=tokens_per_frame(model, int(resolution)),
                vocab=str(vocab), vocab_size=int(vocab_size),
                max_frames=int(video["max_frames"]) if video.get("max_frames") else None)


def resolve(explicit: Any, trained: Any, name: str, *, where: str = "the checkpoint") -> Any:
  """The checkpoint's value unless `explicit` (0 / None / "" = unset) says the same; an explicit
  value that contradicts the checkpoint is a ConfigError naming both."""
  if explicit in (0, None, ""):
    return trained
  if explicit != trained:
    raise ConfigError(f"config.{name}={explicit!r} contradicts {where}, whose model was trained "
                      f"with {name}={trained!r} (its config.json); drop the setting (it is read "
                      "from the checkpoint)")
  return explicit


def fill_input_settings(config: Any, shapes: Shapes, *, where: str) -> None:
  """Sets a caption / eval config's `num_frames` and `resolution` (0 = unset) from `shapes`.

  The resolution must be the model's (a set value that differs is a ConfigError naming both).
  Frames may be overridden (an image model reading 8 frames of a clip, a video model fewer than
  it trained on), up to the temporal table's `max_frames`.
  """
  resolution = int(config.resolution or 0)
  if resolution and resolution != shapes.resolution:
    raise ConfigError(f"config.resolution={resolution} contradicts {where}: resolution "
                      f"{resolution} px, but the checkpoint was trained at {shapes.resolution} px "
                      "(its config.json); drop the setting (it is read from the checkpoint)")
  config.resolution = shapes.resolution
  frames = int(config.num_frames or 0) or shapes.num_frames
  if shapes.max_frames is not None and frames > shapes.max_frames:
    raise ConfigError(f"config.num_frames={frames} contradicts {where}: {frames} frames, but the "
                      f"checkpoint's model reads at most {shapes.max_frames} "
                      f"(model.video.max_frames; trained with {shapes.num_frames})")
  config.num_frames = frames


# ------------------------------------------------------------------------------------- files

def workdir_of(path: str) -> str:
  """The workdir holding config.json: `path` itself, or up to two levels above (checkpoints/,
  checkpoints/<step>)."""
  path = fs.abspath(path)
  for candidate in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
    if fs.isfile(os.path.join(candidate, CONFIG_FILE)):
      return candidate
  return path


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir_of(workdir), CONFIG_FILE)
  if not fs.isfile(path):
    raise FileNotFoundError(f"{path} does not exist: {workdir!r} is not a workdir written by "
                            "`vidistill train` (it writes config.json beside checkpoints/)")
  with fs.open(path, encoding="utf-8") as f:
    return ml_collections.ConfigDict(json.load(f))


def read_shapes(config: Mapping[str, Any]) -> Shapes:
  """The `shapes` block of a stage config written by `vidistill train`.

  Workdirs written before the block existed are read from what the stage trained on: the
  synthetic world's world.json (or the data block's num_frames / resolution) and the vocabulary
  file the data block names.
  """
  if config.get("shapes"):
    return Shapes(**dict(config["shapes"]))
  data = config["data"]
  vocab = data.get("vocab") or os.path.join(data["world"], "vocab.model")
  if data.get("source") in ("world", "text"):
    with fs.open(os.path.join(data["world"], "world.json"), encoding="utf-8") as f:
      info = json.load(f)["config"]
    still = data.get("source") == "text" or data.get("split") == "image_text"
    frames = 1 if still else int(info["num_frames"])
    size = int(info["resolution"])
  else:
    frames, size = int(data["num_frames"]), int(data["resolution"])
  return make_shapes(config, num_frames=frames, resolution=size, vocab=vocab,
                     vocab_size=load_vocabulary(vocab).vocab_size)


def load_vocabulary(path: str) -> Any:
  """The seqio SentencePiece vocabulary the model was trained with."""
  import seqio  # pylint: disable=import-outside-toplevel  (TensorFlow: only when a model loads)
  if not fs.exists(path):
    raise FileNotFoundError(f"the model's vocabulary {path} does not exist (moved since training?)")
  return seqio.SentencePieceVocabulary(path)


def example_batch(config: Mapping[str, Any], frames: int, resolution: int
                  ) -> dict[str, np.ndarray]:
  """A one-example batch of the model's input shapes (for init / eval_shape)."""
  lengths = dict(config["data"]["seq_lengths"])
  video = np.zeros((1, frames, resolution, resolution, 3), np.uint8)
  if build_lib.family(config["model"]["kind"]) == "vlm":
    return {"video": video, "prompt_tokens": np.zeros((1, lengths.get("inputs", 32)), np.int32),
            "target_tokens": np.zeros((1, lengths.get("targets", 32)), np.int32)}
  return {"video": video, "text_tokens": np.zeros((1, lengths["targets"]), np.int32)}


def load(workdir: str, *, vocab: Any = None) -> Trained:
  """The model in `workdir` (or one of its checkpoint dirs) at its latest complete checkpoint,
  parameters replicated over the local devices."""
  config = read_config(workdir)
  shapes = read_shapes(config)
  vocab = vocab or load_vocabulary(shapes.vocab)
  if vocab.vocab_size != shapes.vocab_size:
    raise ConfigError(f"the vocabulary {shapes.vocab} has {vocab.vocab_size} tokens but the model "
                      f"in {workdir} was trained with {shapes.vocab_size}")
  model = build_lib.build(config.model, vocab_size=shapes.vocab_size, vocab=vocab,
                          text_length=int(config.data.seq_lengths.get("targets", 32)))
  # Every parameter comes from the checkpoint, so the template needs shapes and dtypes only:
  # no init is run (eager flax init compiles each op; even jitted it is one large compile).
  abstract = jax.eval_shape(model.init, jax.random.key(0),
                            example_batch(config, shapes.num_frames, shapes.resolution))
  # Replicated over every local device: evaluators may shard batches over all of them, and a jit
  # needs its arguments on one set of devices.
  everywhere = jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(jax.local_devices()), ("data",)), jax.sharding.PartitionSpec())
  template = jax.tree.map(lambda s: jax.device_put(np.zeros(s.shape, s.dtype), everywhere),
                          _unbox(abstract["params"]))
  try:
    params = checkpoint_params.load_params(workdir, template, strict=True)
  except checkpoint_params.CheckpointError as e:
    raise checkpoint_params.CheckpointError(
        f"the checkpoint in {workdir!r} does not fit the model its config.json describes ({e}); "
        "was config.json replaced? Restore the one the run was trained with") from None
  if hasattr(model, "with_params"):
    model = model.with_params(params)
  return Trained(config=config, shapes=shapes, vocab=vocab, model=model, params=params)


def _unbox(tree: Any) -> Any:
  return nn.meta.unbox(tree)
