"""What every evaluator shares: model protocols, the model seam, options, construction, jit cache.

An evaluator is one entry of a suite config's `evals` (big_vision evaluators/common.py style):

    config.evals.msrvtt_1ka = dict(kind="retrieval", reader="msrvtt_1ka", annotations=...,
                                   video_root=..., captions="first", ...)

`evaluators.from_config` (the package's __init__, which holds the table of kinds) turns each entry
into an evaluator object (base.py); options are parsed and checked here.

Models are reached through two small protocols, so evaluators are tested with deterministic fakes
and the real models plug in through one seam, `load_model(config, checkpoint_dir)`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidistill import fs
from vidistill.config_args import ConfigError
from vidistill.data.annotations import DEFAULT_EXTENSIONS


class EvalDataError(ValueError):
  """Evaluation data that cannot be used: a missing file, no records, an undecodable video."""


# ------------------------------------------------------------------------------------------------
# What evaluators need from a model.

@runtime_checkable
class VideoTextEmbedder(Protocol):
  """A dual encoder (retrieval, zero-shot classification).

  embed_videos: frames uint8 [B, T, H, W, 3] (numpy, or a jax.Array sharded over the batch mesh
    axes) -> [B, D] float embeddings.
  embed_texts: B strings -> [B, D] float embeddings.
  Embeddings need not be normalised; evaluators normalise them (cosine similarity).
  """

  def embed_videos(self, frames: Any) -> Any:
    ...

  def embed_texts(self, texts: list[str]) -> Any:
    ...


@runtime_checkable
class VideoTextGenerator(Protocol):
  """A video VLM (captioning, QA): the "Captioner" of the evaluation brief.

  generate: frames uint8 [B, T, H, W, 3], B prompts -> B decoded strings (decoding settings are
    the model's, from the config it was loaded with; evaluation wants them deterministic).
  score: frames, B prompts, B lists of C candidate answers -> [B, C] float log-likelihoods of each
    candidate given (video, prompt) (vidistill.models.vlm `score_batch` with [B, C, L] targets).
  """

  def generate(self, frames: Any, prompts: list[str]) -> list[str]:
    ...

  def score(self, frames: Any, prompts: list[str], candidates: list[list[str]]) -> Any:
    ...


MODEL_KINDS: dict[str, type] = {"dual_encoder": VideoTextEmbedder, "vlm": VideoTextGenerator}


def load_model(config: ml_collections.ConfigDict, checkpoint_dir: str) -> Any:
  """The model of `config.model.kind` restored from `checkpoint_dir` (a `vidistill train` workdir):
  the one seam to the models. Returns a VideoTextEmbedder ("dual_encoder") or a
  VideoTextGenerator ("vlm"), and sets `config.num_frames` / `resolution` to the model's."""
  from vidistill.models import vlm_text  # pylint: disable=g-import-not-at-top  (jax, on demand)
  from vidistill.models import build  # pylint: disable=g-import-not-at-top
  from vidistill.models import trained as trained_lib  # pylint: disable=g-import-not-at-top
  kind = config.model.kind
  trained_config = trained_lib.read_config(checkpoint_dir)
  if build.family(trained_config.model.kind) != kind:
    raise ConfigError(f"the {config.get('suite', '')!r} suite evaluates a {kind!r} model but "
                      f"{checkpoint_dir!r} holds a {trained_config.model.kind!r}; evaluate it "
                      "with a suite for that kind (docs/evaluation.md)")
  # Checked before the model loads. Frames and resolution are the checkpoint's (0 = unset).
  trained_lib.fill_input_settings(config, trained_lib.read_shapes(trained_config),
                                  where=f"the {config.get('suite', '')!r} suite (frames=, res=)")
  trained = trained_lib.load(checkpoint_dir)
  if kind == "dual_encoder":
    return trained.model
  lengths = trained.config.data.seq_lengths
  runner = vlm_text.VLMText(trained.model, trained.params, trained.vocab,
                            prompt_length=int(lengths.get("inputs", 32)),
                            answer_length=int(lengths.get("targets", 32)))
  return VLMGenerator(runner, vlm_text.decode_config(config.model.get("decode", {})))


class VLMGenerator:
  """VideoTextGenerator over `vidistill.models.vlm_text.VLMText` (deterministic decoding)."""

  def __init__(self, runner: Any, decode: Any):
    self.runner, self.decode = runner, decode

  def generate(self, frames: Any, prompts: list[str]) -> list[str]:
    return [hyps[0][0] for hyps in self.runner.generate(frames, prompts, self.decode)]

  def score(self, frames: Any, prompts: list[str], candidates: list[list[str]]) -> Any:
    return self.runner.score(frames, prompts, candidates)


# ------------------------------------------------------------------------------------------------
# Suite-wide settings and per-evaluator options.

@dataclasses.dataclass(frozen=True)
class Settings:
  """How every evaluator of a suite reads videos and batches them (the config's top level)."""
  num_frames: int                       # Frames sampled uniformly per video (window).
  resolution: int                       # Square frame side in pixels (resize + centre crop).
  batch_size: int                       # Videos (or texts) per model call.
  pad_batches: bool = True              # Pad the last batch: one compiled shape per evaluator.
  num_workers: int = 4                  # Threads decoding videos ahead of the model.
  buffer: int = 16                      # Videos decoded ahead.
  video_extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
  progress_every_s: float = 30.0        # Seconds between progress lines.
  mesh: Any = None                      # jax.sharding.Mesh: batches sharded over its batch axes.


def settings_from_config(config: ml_collections.ConfigDict) -> Settings:
  """Settings from a suite config; builds the mesh when `config.shard_batches`."""
  mesh = None
  if config.shard_batches:
    from vidistill.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    mesh = mesh_lib.make_mesh(dict(config.mesh))
  settings = Settings(
      num_frames=config.num_frames, resolution=config.resolution, batch_size=config.batch_size,
      pad_batches=config.pad_batches, num_workers=config.prefetch.num_workers,
      buffer=config.prefetch.buffer, video_extensions=tuple(config.video_extensions),
      progress_every_s=config.progress_every_s, mesh=mesh)
  # num_frames / resolution 0: the checkpoint's, set by load_model (run_suite checks they are).
  for key, least in (("num_frames", 0), ("resolution", 0), ("batch_size", 1)):
    if getattr(settings, key) < least:
      raise ConfigError(f"config.{key}={getattr(settings, key)!r} must be an integer >= {least}")
  check_batch_size(settings, settings.batch_size, "config.batch_size")
  return settings


def check_batch_size(settings: Settings, batch_size: int, where: str) -> None:
  """A sharded batch must split evenly over the batch mesh axes, and so needs padding."""
  if settings.mesh is None:
    return
  shards = batch_shards(settings.mesh)
  if batch_size % shards:
    raise ConfigError(f"{where}={batch_size} does not split over the {shards} devices of the "
                      f"mesh's batch axes {dict(settings.mesh.shape)}; use a multiple of {shards}")
  if not settings.pad_batches:
    raise ConfigError("config.pad_batches=False with config.shard_batches=True: a short last "
                      "batch would not split over the mesh; set pad_batches=True")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataOptions:
  """The options every evaluator entry has: which annotations, where the videos are."""
  reader: str                           # vidistill.data.annotations.READERS name, e.g. "msrvtt".
  annotations: str                      # The annotation file in that data set's layout.
  video_root: str                       # Folder the records' videos resolve against.
  reader_options: dict = dataclasses.field(default_factory=dict)  # Reader keywords (split=...).
  max_examples: int = 0                 # Evaluate only the first N records (0 = all).
  on_error: str = "raise"               # A video that cannot be decoded: "raise" or "skip" it.
  batch_size: int = 0                   # Overrides the suite's batch size (0 = the suite's).


ON_ERROR = ("raise", "skip")


def parse_options(cls: type, entry: Mapping[str, Any], where: str) -> Any:
  """`cls(**entry)` (a DataOptions dataclass) with errors naming the entry and the bad key.

  Unknown keys, missing required keys and values of the wrong type are ConfigErrors; lists become
  tuples and ConfigDicts dicts.
  """
  entry = entry.to_dict() if isinstance(entry, ml_collections.ConfigDict) else dict(entry)
  entry.pop("kind", None)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(entry) - set(fields))
  if unknown:
    raise ConfigError(f"{where}: unknown option(s) {unknown}; {cls.__name__} takes "
                      f"{sorted(fields)}")
  missing = sorted(n for n, f in fields.items() if n not in entry and _required(f))
  if missing:
    raise ConfigError(f"{where}: missing option(s) {missing}")
  values = {}
  for key, value in entry.items():
    default = _default(fields[key])
    if isinstance(value, list):
      value = tuple(value)
    if default is not None and not _same_kind(value, default):
      raise ConfigError(f"{where}.{key}={value!r} should be a {type(default).__name__}")
    values[key] = float(value) if isinstance(default, float) else value
  options = cls(**values)
  if options.on_error not in ON_ERROR:
    raise ConfigError(f"{where}.on_error={options.on_error!r} is not one of {ON_ERROR}")
  if options.max_examples < 0 or options.batch_size < 0:
    raise ConfigError(f"{where}: max_examples and batch_size must be >= 0 (0 = all / the suite's)")
  return options


def _required(field: dataclasses.Field) -> bool:
  return (field.default is dataclasses.MISSING and
          field.default_factory is dataclasses.MISSING)  # type: ignore[misc]


def _default(field: dataclasses.Field) -> Any:
  if field.default is not dataclasses.MISSING:
    return field.default
  if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
    return field.default_factory()  # type: ignore[misc]
  return "" if field.type in ("str", str) else None


def _same_kind(value: Any, default: Any) -> bool:
  if isinstance(default, bool) or isinstance(value, bool):
    return isinstance(value, bool) and isinstance(default, bool)
  if isinstance(default, float):
    return isinstance(value, (int, float))
  return isinstance(value, type(default))


# ------------------------------------------------------------------------------------------------
# Device helpers: the jit cache, sharding batches over the mesh, results back to the host.

@functools.lru_cache(maxsize=None)
def _jit(fn: Callable, jit_items: tuple) -> Callable:
  return jax.jit(fn, **dict(jit_items))


def cached_jit(fn: Callable, **jit_kwargs: Any) -> Callable:
  """`jax.jit(fn, **jit_kwargs)`, one per (fn, options) for the whole process.

  Evaluators (and model adapters) get their jitted functions here, so two evaluators of a suite
  that apply the same function share one traced and compiled function (big_vision's
  `@functools.cache def get_eval_fn(predict_fn, ...)`). Options must be hashable.
  """
  return _jit(fn, tuple(sorted(jit_kwargs.items())))


def _l2_normalize(x: jax.Array) -> jax.Array:
  x = x.astype(jnp.float32)
  # A zero vector stays zero (and ties with everything) instead of becoming NaN.
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def normalized_embeddings(embeddings: Any, where: str, expected_rows: int) -> np.ndarray:
  """Model output [B, D] -> float32 numpy [B, D] of unit L2 norm (normalised on device)."""
  shape = np.shape(embeddings)
  if len(shape) != 2 or shape[0] != expected_rows:
    raise EvalDataError(f"{where}: the model returned embeddings of shape {tuple(shape)}; "
                        f"expected [{expected_rows}, D]")
  return to_host(cached_jit(_l2_normalize)(embeddings))


def batch_shards(mesh: Any) -> int:
  from vidistill.parallel import partitioning  # pylint: disable=g-import-not-at-top
  return int(np.prod([mesh.shape[a] for a in partitioning.BATCH_AXES if a in mesh.shape]))


def shard_batch(array: np.ndarray, mesh: Any) -> Any:
  """A host batch [B, ...] as a jax.Array sharded over the mesh's batch axes (or as is).

  Every process holds the whole host batch; each keeps only the shards its devices address, so
  this is right on one host and on many.
  """
  if mesh is None:
    return array
  from vidistill.parallel import partitioning  # pylint: disable=g-import-not-at-top
  sharding = partitioning.data_sharding(mesh)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(x: Any) -> np.ndarray:
  """A (possibly sharded, possibly multi-host) array as a full numpy array on this host."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)


# ------------------------------------------------------------------------------------------------
# Files for people to read.

def write_predictions(output_dir: str | None, rows: Sequence[Mapping[str, Any]]) -> str | None:
  """Writes `output_dir/predictions.jsonl` (one JSON object a row; atomically); returns the path."""
  if output_dir is None:
    return None
  fs.makedirs(output_dir)
  path = os.path.join(output_dir, "predictions.jsonl")
  with fs.open(path + ".partial", "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
  fs.replace(path + ".partial", path)
  return path


def check_texts(outputs: Any, count: int, where: str) -> list[str]:
  """A model's decoded strings for a batch: exactly `count` of them."""
  outputs = list(outputs)
  if len(outputs) != count or not all(isinstance(o, str) for o in outputs):
    raise EvalDataError(f"{where}: the model returned {len(outputs)} outputs "
                        f"({sorted({type(o).__name__ for o in outputs})}) for a batch of {count};"
                        " generate() must return one string per video")
  return outputs
