"""Learning-rate schedules: linear warmup, then cosine / rsqrt / linear decay or constant.

`config.schedule = {kind, warmup_steps, end_factor, timescale}` (big_vision's `decay_type`):

  warmup      lr * step / warmup_steps for step < warmup_steps (0 at step 0, as big_vision)
  cosine      lr * (end + (1 - end) * (1 + cos(pi * p)) / 2),  p = progress after warmup in [0, 1]
  linear      lr * (1 - (1 - end) * p)
  rsqrt       lr / sqrt(1 + (step - warmup_steps) / timescale)   (T5's inverse square root)
  constant    lr

`end` is `end_factor` (the final lr as a fraction of the peak), progress p = (step - warmup) /
(total_steps - warmup), clipped to [0, 1].
"""
from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp
import optax

from vidistill.config_args import ConfigError

KINDS = ("cosine", "rsqrt", "linear", "constant")


def make_schedule(schedule: Mapping[str, Any], *, base_lr: float, total_steps: int) -> optax.Schedule:
  """Returns `step (int32 []) -> learning rate (float32 [])`, a pure jnp function.

  Raises ConfigError naming the key when the kind is unknown or the numbers do not fit.
  """
  kind = schedule.get("kind", "cosine")
  warmup = int(schedule.get("warmup_steps", 0))
  end = float(schedule.get("end_factor", 0.0))
  timescale = float(schedule.get("timescale", 10_000))
  if kind not in KINDS:
    raise ConfigError(f"config.schedule.kind={kind!r} is not one of {list(KINDS)}")
  if warmup < 0 or warmup > total_steps:
    raise ConfigError(f"config.schedule.warmup_steps={warmup} must be in [0, total_steps="
                      f"{total_steps}]")
  if not 0.0 <= end <= 1.0:
    raise ConfigError(f"config.schedule.end_factor={end} must be in [0, 1]")
  if timescale <= 0:
    raise ConfigError(f"config.schedule.timescale={timescale} must be positive")
  decay_steps = max(total_steps - warmup, 1)

  def schedule_fn(step):
    step = jnp.asarray(step, jnp.float32)
    after = jnp.maximum(step - warmup, 0.0)
    progress = jnp.clip(after / decay_steps, 0.0, 1.0)
    if kind == "cosine":
      factor = end + (1.0 - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    elif kind == "linear":
      factor = 1.0 - (1.0 - end) * progress
    elif kind == "rsqrt":
      factor = jnp.sqrt(timescale / (timescale + after))
    else:
      factor = jnp.ones_like(step)
    if warmup:
      factor = factor * jnp.minimum(1.0, step / warmup)
    return (base_lr * factor).astype(jnp.float32)

  return schedule_fn
