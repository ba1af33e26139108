"""Validation of a synthetic-world config (configs/data/synthetic.py): typed errors naming the key.

Called by the config file (so `get_config("tiny,res=20")` fails at once) and again by `vidistill
data synth` after `--config.x=` overrides.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vidistill.config_args import ConfigError, check_choice, check_positive
from vidistill.data.synthetic import questions
from vidistill.data.synthetic import scene as scene_lib
from vidistill.data.synthetic import vocab

SPLITS = ("image_text", "labeled", "narratives", "pool", "test", "qa")
MIN_SIZE_RATIO = 1.4  # Neighbouring sizes must differ clearly (radius ratio).


def _subset(config: Any, key: str, known: tuple[str, ...], at_least: int = 1) -> None:
  values = tuple(config[key])
  unknown = [v for v in values if v not in known]
  if unknown:
    raise ConfigError(f"config.{key}: unknown name(s) {unknown}; known: {list(known)}")
  if len(set(values)) != len(values):
    raise ConfigError(f"config.{key}={list(values)} repeats a name")
  if len(values) < at_least:
    raise ConfigError(f"config.{key}={list(values)} needs at least {at_least} entries")


def _probability(config: Any, key: str, upper_open: bool = False) -> None:
  node = config
  for part in key.split("."):
    node = node[part]
  if not isinstance(node, (int, float)) or not 0 <= node <= 1 or (upper_open and node == 1):
    bracket = ")" if upper_open else "]"
    raise ConfigError(f"config.{key}={node!r} must be a probability in [0, 1{bracket}")


def validate(config: Any) -> None:
  """Raises ConfigError naming the first bad key and value, and what would work."""
  check_positive(config, "resolution", "num_frames", "fps")
  if not isinstance(config.vocab_size, int) or config.vocab_size < 320:
    raise ConfigError(f"config.vocab_size={config.vocab_size!r}: need an integer >= 320 (256 byte "
                      "pieces + the special ids + room for words)")
  res = config.resolution
  if not isinstance(res, int) or res % 2:
    raise ConfigError(f"config.resolution={res!r} must be an even integer (h264 stores 4:2:0 "
                      "chroma at half resolution)")
  if not isinstance(config.num_frames, int) or config.num_frames < 6:
    raise ConfigError(f"config.num_frames={config.num_frames!r}: need >= 6 so each half of the "
                      "clip shows its action over >= 3 frames")
  _subset(config, "shapes", vocab.SHAPES)
  _subset(config, "colours", tuple(vocab.COLOURS))
  _subset(config, "actions", vocab.ACTIONS, at_least=2)
  _subset(config, "backgrounds", vocab.BACKGROUNDS)
  if "media_splits" in config:
    _subset(config, "media_splits", SPLITS, at_least=0)
  sizes = sorted(dict(config.sizes).items(), key=lambda kv: kv[1])
  if not sizes:
    raise ConfigError("config.sizes is empty; give e.g. {'small': 0.12, 'large': 0.21}")
  for word, radius in sizes:
    if not isinstance(radius, (int, float)) or not 0 < radius <= 0.3:
      raise ConfigError(f"config.sizes.{word}={radius!r}: a radius as a fraction of the frame "
                        "width in (0, 0.3]")
  word, smallest = sizes[0]
  if smallest * res < vocab.MIN_RADIUS_PX:
    need = int(np.ceil(vocab.MIN_RADIUS_PX / smallest / 2) * 2)
    raise ConfigError(
        f"config.resolution={res} is too small for the shapes: size {word!r} ({smallest} of the "
        f"frame) would be {smallest * res:.1f} px in radius and shapes need >= "
        f"{vocab.MIN_RADIUS_PX} px to stay distinguishable; use resolution >= {need} or a larger "
        f"config.sizes.{word}")
  for (w1, r1), (w2, r2) in zip(sizes, sizes[1:]):
    if r2 / r1 < MIN_SIZE_RATIO:
      raise ConfigError(f"config.sizes: {w1!r}={r1} and {w2!r}={r2} differ by x{r2 / r1:.2f}; "
                        f"sizes must differ by >= x{MIN_SIZE_RATIO} to be told apart")
  for key in ("min_objects", "max_objects"):
    if not isinstance(config[key], int) or config[key] < 1:
      raise ConfigError(f"config.{key}={config[key]!r} must be an integer >= 1")
  most = min(len(config.shapes), len(config.colours), 4)
  if not config.min_objects <= config.max_objects <= most:
    raise ConfigError(
        f"config.min_objects={config.min_objects}, config.max_objects={config.max_objects}: need "
        f"1 <= min <= max <= {most} (objects never share a shape or a colour; at most 4 fit)")
  _probability(config, "two_action_prob")
  _probability(config, "distractor_fraction", upper_open=True)
  for key in ("wrong_attribute_prob", "drop_object_prob", "junk_prob"):
    _probability(config, f"alt_text.{key}")
  if config.alt_text.junk_prob == 1:
    raise ConfigError("config.alt_text.junk_prob=1 would append junk words forever; use < 1")
  check_choice(config, "gold_variants", (1, 2, 3))
  check_positive(config, "questions_per_clip")
  for split in SPLITS:
    size, shards = config.splits[split], config.num_shards[split]
    if not isinstance(size, int) or size < 0:
      raise ConfigError(f"config.splits.{split}={size!r} must be an integer >= 0")
    if not isinstance(shards, int) or shards < 1 or (size and shards > size):
      raise ConfigError(f"config.num_shards.{split}={shards!r} must be an integer in [1, "
                        f"{max(size, 1)}] (config.splits.{split}={size})")
  if config.splits.qa:
    if len(config.actions) < questions.NUM_CHOICES or len(config.colours) < questions.NUM_CHOICES:
      raise ConfigError(
          f"config.splits.qa={config.splits.qa} asks {questions.NUM_CHOICES}-way questions: "
          f"config.actions ({len(config.actions)}) and config.colours ({len(config.colours)}) "
          f"need >= {questions.NUM_CHOICES} entries each")
  check_choice(config, "video_codec", ("h264", "mpeg4"))  # Both fit .mp4.
  check_choice(config, "shard_frames_encoding", ("raw", "png"))
  check_choice(config, "short_caption", ("any", "first"))
  spec = scene_lib.WorldSpec.from_config(config)
  try:
    rng = np.random.default_rng(0)
    for _ in range(4):
      scene_lib.sample_scene(rng, spec)
  except scene_lib.InfeasibleSceneError as e:
    raise ConfigError(f"config.sizes / config.max_objects: {e}") from None
