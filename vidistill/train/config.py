"""Every option of the trainer, with its default and a one-line comment: stage configs start here.

    from vidistill.train import config as train_config
    def get_config(arg=None):
      config = train_config.base_config()
      config.total_steps = 1000
      config.frozen = ("t5/.*",)        # stage 1: the language model stays as it is
      ...
"""
from __future__ import annotations

from typing import Any

import ml_collections

from vidistill.config_args import ConfigError, check_choice, check_positive
from vidistill.train import optim, schedules

DTYPES = ("float32", "bfloat16")
ON_NONFINITE = ("stop", "skip")


def base_config() -> ml_collections.ConfigDict:
  """The trainer's schema with defaults (unlocked: the caller adds its own keys, then locks)."""
  c = ml_collections.ConfigDict()
  c.seed = 0                      # Init, shuffling and dropout all derive from it.
  c.total_steps = None            # Training length: set exactly one of steps / examples / epochs.
  c.total_examples = None
  c.total_epochs = None
  c.dataset_size = None           # Examples in the training split; needed by total_epochs.
  c.batch_size = 256              # GLOBAL batch (all processes, all micro-batches).
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})  # -1: the rest.
  c.sharding_rules = None         # [(logical_name, mesh_axes), ...] over the defaults; None: defaults.
  c.dtype = "float32"             # Compute dtype; master weights are always float32.

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adamw"          # adamw | adafactor | sgd.
  c.optim.lr = 1e-3               # Peak learning rate.
  c.optim.b1 = 0.9                # Adam beta1; momentum of sgd / adafactor (0: none).
  c.optim.b2 = 0.999              # Adam beta2 (adamw only).
  c.optim.eps = 1e-8              # Adam epsilon (adamw only).
  c.optim.weight_decay = 0.0      # Decoupled decay (adamw/adafactor), L2 for sgd; 0: off.
  c.optim.wd_mask = None          # Regexes of decayed param paths; None: kernels only.
  c.optim.grad_clip_norm = 1.0    # Global-norm clip of the trainable gradients; 0: off.
  c.optim.accum_steps = 1         # Micro-batches per step (gradient accumulation in the step).

  c.schedule = ml_collections.ConfigDict()
  c.schedule.kind = "cosine"      # cosine | rsqrt | linear | constant.
  c.schedule.warmup_steps = 0     # Linear warmup from 0.
  c.schedule.end_factor = 0.0     # Final lr / peak lr (cosine, linear).
  c.schedule.timescale = 10_000   # rsqrt: lr / sqrt(1 + (step - warmup) / timescale).

  c.frozen = ()                   # Regexes of "/"-joined param paths that are not trained.

  c.init = ml_collections.ConfigDict()
  c.init.checkpoint = ""          # Workdir / checkpoints dir / step dir of an earlier stage.
  c.init.strict = True            # Every model param must come from the checkpoint.
  c.init.params_map = None        # [(regex_from, regex_to), ...]: load (and rename) a subtree.
  # Imported weights (docs/checkpoints.md), used when there is no init.checkpoint: a spec is
  # "FORMAT:PATH" or "PATH", FORMAT one of convert/imports.py FORMATS (big_vision, t5_hf,
  # paligemma_hf, ...).
  c.init.import_vit = ""          # Into the model's vision encoder (a SigLIP / ViT checkpoint).
  c.init.import_lm = ""           # Into its language model (T5 / UL2 / Gemma) or text tower.
  c.init.import_vlm = ""          # A whole image VLM (PaliGemma: model.kind "paligemma").
  c.init.imports = ()             # More: [(param subtree, spec), ...], e.g. (("t5", "t5x:/c"),).

  c.log_every = 50                # Steps between metric lines.
  c.checkpoint_every = 1000       # Steps between checkpoints (0: only the final one).
  c.keep_checkpoints = 3          # Checkpoints kept (0: all).
  c.async_checkpoints = True      # Write checkpoints in the background.
  c.eval_every = 0                # Steps between eval hooks (0: only at the end).
  c.on_nonfinite = "stop"         # NaN/Inf loss: stop (naming the step) | skip the update.
  c.peak_flops_per_device = 0.0   # Peak FLOP/s of one device for MFU; 0: measure a matmul.
  c.tensorboard = True            # TensorBoard event files (clu) besides the console.
  c.prefetch = 2                  # Host batches prepared ahead in a background thread.
  # Update steps per compiled call (a lax.scan; vidistill/train/multistep.py). The same result for
  # any value; > 1 saves per-call overhead on CPU. Calls stop at log / checkpoint / eval steps,
  # so make those multiples of it.
  c.steps_per_call = 1
  return c


def validate(config: Any) -> None:
  """Raises ConfigError naming the first bad value."""
  check_positive(config, "batch_size")
  check_choice(config, "dtype", DTYPES)
  check_choice(config, "on_nonfinite", ON_NONFINITE)
  check_choice(config, "optim.name", optim.NAMES)
  check_choice(config, "schedule.kind", schedules.KINDS)
  check_positive(config, "optim.accum_steps", "log_every", "steps_per_call")
  for key in ("checkpoint_every", "keep_checkpoints", "eval_every"):
    if int(config[key]) < 0:
      raise ConfigError(f"config.{key}={config[key]} must be >= 0")
  imports = [k for k in ("import_vit", "import_lm", "import_vlm", "imports")
             if config.init.get(k)]
  if imports and config.init.checkpoint:
    raise ConfigError(f"config.init.checkpoint={config.init.checkpoint!r} and config.init."
                      f"{imports[0]}={config.init.get(imports[0])!r} are both set: a stage starts "
                      "from an earlier stage's checkpoint or from imported weights, not both")
  if isinstance(config.frozen, str):
    raise ConfigError(f"config.frozen={config.frozen!r} must be a list of regexes, not a string")
