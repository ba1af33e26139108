"""`vidistill train`: one stage of the method, from its config.

    vidistill train --config configs/train/visual_adaptation.py:tiny,world=DIR,init=PREV \
        --workdir DIR [--config.total_steps=200] [--dry_run]

Stages (configs/train/): image_pretrain (the stand-in for a pretrained image VLM),
visual_adaptation (LM frozen), language_adaptation (vision frozen), dual_encoder (contrastive, with
a caption source). Rerunning the same command resumes from the workdir's last complete checkpoint;
`init=` (config.init.checkpoint) starts a new stage from a previous stage's workdir. The workdir
gets config.json, checkpoints/ and TensorBoard metrics. Multi-host: run the same command on every
host (jax.distributed flags below, or let JAX detect the cluster).
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

from absl import flags

from vidistill import flags_lib
from vidistill.parallel import multihost
from vidistill.train import stage


def define_flags() -> None:
  if "workdir" not in flags.FLAGS:
    flags_lib.define_config_and_workdir(workdir_help="This stage's directory: config.json, "
                                        "checkpoints/, metrics. Rerun to resume.")
    multihost.define_flags()
  flags_lib.define_once(flags.DEFINE_bool, "dry_run", False, "Resolve the config, build the "
                        "model and print its parameter count and shapes (jax.eval_shape); train "
                        "nothing.")


def main(argv: Sequence[str]) -> None:
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}")
  config = flags_lib.config_from_flags()
  if flags.FLAGS.dry_run:
    print(json.dumps(stage.dry_run(config), indent=2))
    return
  workdir = flags_lib.workdir_from_flags()
  multihost.initialize()
  from vidistill.convert import imports, siglip, t5  # pylint: disable=g-import-not-at-top
  try:
    stage.train_stage(config, workdir)
  except (imports.ImportSpecError, siglip.CheckpointMismatchError, t5.ConversionError) as e:
    raise flags_lib.UsageError(f"config.init import: {e}") from None


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__], multihost], main)
