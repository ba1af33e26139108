"""The optimizer of a stage, from `config.optim` and `config.frozen` (big_vision's optax config).

  name            "adamw" | "adafactor" | "sgd"
  lr              peak learning rate (the schedule scales it)
  b1, b2, eps     adamw: Adam moments and epsilon. adafactor: b1 > 0 adds momentum b1; b2 and
                  eps are not used (factored second moments with optax's decay_rate 0.8,
                  eps 1e-30). sgd: b1 > 0 is the momentum.
  weight_decay    adamw / adafactor: decoupled (optax: lr * wd * param); sgd: L2 added to the
                  gradient. 0 turns it off.
  wd_mask         regexes of the parameter paths that get decay; default: kernels only
  grad_clip_norm  clip the global norm of the TRAINABLE gradients to this; 0 turns it off
  accum_steps     micro-batches per step; handled by the trainer's step, not here

Frozen parameters (`config.frozen` regexes) get `optax.set_to_zero()` through
`optax.multi_transform`: they hold no optimizer state and are never clipped or decayed.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import optax

from vidistill.config_args import ConfigError
from vidistill.train import state as state_lib

NAMES = ("adamw", "adafactor", "sgd")
DEFAULT_WD_MASK = (r"(.*/)?kernel",)
TRAIN, FROZEN = "train", "frozen"


def weight_decay_mask_fn(patterns: Sequence[str]):
  """`params -> tree of bool` (True: decayed). A function, so it also works on the masked trees
  that `multi_transform` passes down (frozen leaves already removed)."""
  return lambda params: state_lib.regex_mask(params, patterns, what="optim.wd_mask",
                                             must_match=False)


def _base_optimizer(optim: Mapping[str, Any], learning_rate: optax.Schedule,
                    ) -> optax.GradientTransformation:
  name = optim.get("name", "adamw")
  wd = float(optim.get("weight_decay", 0.0))
  b1 = float(optim.get("b1", 0.9))
  patterns = DEFAULT_WD_MASK if optim.get("wd_mask") is None else optim.get("wd_mask")
  mask = weight_decay_mask_fn(list(patterns))
  if name == "adamw":
    return optax.adamw(learning_rate, b1=b1, b2=float(optim.get("b2", 0.999)),
                       eps=float(optim.get("eps", 1e-8)), weight_decay=wd, mask=mask)
  if name == "adafactor":
    return optax.adafactor(learning_rate, momentum=b1 or None,
                           weight_decay_rate=wd or None, weight_decay_mask=mask if wd else None)
  if name == "sgd":
    parts = [optax.add_decayed_weights(wd, mask)] if wd else []
    parts.append(optax.sgd(learning_rate, momentum=b1 or None))
    return optax.chain(*parts)
  raise ConfigError(f"config.optim.name={name!r} is not one of {list(NAMES)}")


def make_optimizer(optim: Mapping[str, Any], learning_rate: optax.Schedule, params: Any,
                   frozen: Sequence[str] = ()) -> tuple[optax.GradientTransformation, Any]:
  """Returns `(tx, frozen_mask)` for `params` (a pytree of arrays or ShapeDtypeStructs).

  `frozen_mask` is a pytree of Python bools like `params` (True: frozen). A frozen pattern that
  matches no parameter is a ConfigError.
  """
  clip = float(optim.get("grad_clip_norm", 0.0))
  if clip < 0:
    raise ConfigError(f"config.optim.grad_clip_norm={clip} must be >= 0 (0: no clipping)")
  tx = _base_optimizer(optim, learning_rate)
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  frozen_mask = state_lib.regex_mask(params, list(frozen or ()), what="config.frozen pattern")
  if not any(jax.tree.leaves(frozen_mask)):
    return tx, frozen_mask
  labels = jax.tree.map(lambda f: FROZEN if f else TRAIN, frozen_mask)
  return optax.multi_transform({TRAIN: tx, FROZEN: optax.set_to_zero()}, labels), frozen_mask
