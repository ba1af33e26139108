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
  flags_lib.define_once(flags.DEFINE_bool, "restart", False, "Delete the run already in "
                        "--workdir (checkpoints, config.json, metrics, eval results) and train "
                        "from step 0. Without it, a rerun resumes, and a rerun whose config "
                        "differs from the workdir's (beyond the schedule length and logging, "
                        "checkpoint and eval cadence) is refused.")
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
  # pylint: disable=g-import-not-at-top
  from vidistill.config_args import ConfigError
  from vidistill.convert import imports, siglip, t5
  from vidistill.data.vocab import VocabularyError
  from vidistill.models.vit import VariantError
  from vidistill.parallel.mesh import MeshError
  from vidistill.train.checkpoints import CheckpointError
  from vidistill.train.input import InputError
  from vidistill.train.stage_input import StageDataError
  from vidistill.train.trainer import NonFiniteLossError, TrainError
  try:
    stage.train_stage(config, workdir, restart=flags.FLAGS.restart)
  except (imports.ImportSpecError, siglip.CheckpointMismatchError, t5.ConversionError) as e:
    raise flags_lib.UsageError(f"config.init import: {e}") from None
  except NonFiniteLossError as e:
    raise flags_lib.CommandError(str(e), flags_lib.EXIT_FAILED) from None
  except (ConfigError, VocabularyError, CheckpointError, TrainError, FileNotFoundError,
          StageDataError, InputError, MeshError, VariantError) as e:
    raise flags_lib.UsageError(str(e)) from None


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__], multihost], main)
