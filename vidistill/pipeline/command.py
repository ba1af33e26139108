"""`vidistill pipeline`: the whole method end to end on the synthetic world, and its report.

    vidistill pipeline --config configs/pipeline.py:quick --workdir /tmp/vd_quick
    vidistill pipeline --config configs/pipeline.py:default --workdir /tmp/vd --seeds 3
    vidistill pipeline --config configs/pipeline.py:default --workdir /tmp/vd --only report
    vidistill pipeline --config configs/pipeline.py:paper --workdir /tmp/vd_paper --dry_run

Steps (docs/pipeline.md): world, text_pretrain, image_pretrain, visual_adaptation,
language_adaptation, visual_adaptation_lm_unfrozen, caption_pseudo, caption_frame, de_<source>_<n>
(dual encoders), eval_<model>, report. A complete step (DONE in its directory) is skipped on a
rerun; --only / --from run the named steps again. The report is DIR/report.md + report.json.
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

from absl import flags

from vidistill import flags_lib
from vidistill.config_args import ConfigError


def define_flags() -> None:
  if "config" not in flags.FLAGS:
    flags_lib.define_config_and_workdir(
        workdir_help="The run's directory: world/, seed_<k>/<step>/, report.md. Rerun to resume.")
  flags_lib.define_once(flags.DEFINE_string, "only", "",
                        "Run only this step (again, if it is complete).")
  flags_lib.define_once(flags.DEFINE_string, "from", "",
                        "Run this step and every later one (again).")
  flags_lib.define_once(flags.DEFINE_integer, "seeds", 0, "Repeat the training steps with seeds "
                        "0..N-1 and report mean ± std (0: config.seeds).")
  flags_lib.define_once(flags.DEFINE_bool, "dry_run", False, "Resolve every config and model "
                        "shape (jax.eval_shape); run nothing.")


def main(argv: Sequence[str]) -> None:
  # pylint: disable=g-import-not-at-top
  from vidistill.pipeline import dry_run, layout, runner
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}; every input is a flag")
  config = flags_lib.config_from_flags()
  f = flags.FLAGS
  try:
    if f.dry_run:
      print(json.dumps(dry_run.check(config), indent=2))
      return
    workdir = flags_lib.workdir_from_flags()
    runner.run(config, workdir, only=f.only, start=f["from"].value,
               seeds=f.seeds or int(config.seeds))
  except (layout.PipelineError, ConfigError) as e:
    raise flags_lib.UsageError(str(e)) from None


def run(prog: str, argv: Sequence[str]) -> None:
  """Entry point used by vidistill.cli: `vidistill pipeline [flags]`."""
  define_flags()
  flags.FLAGS.unparse_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__]], main)
