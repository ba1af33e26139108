r"""`vidistill eval`: evaluate a checkpoint on a suite (retrieval, captioning, QA, zero-shot).

    vidistill eval --config configs/eval/retrieval.py:tiny,data=/tmp/world \
        --checkpoint CKPT --workdir OUT [--only msrvtt_1ka,vatex]

A suite config lists evaluators (`config.evals`); each reads an annotation file in a real data
set's layout with its videos, runs the model over it in batches and yields metrics. Results go to
OUT/results.json (every number, the config and the checkpoint), OUT/results.md (tables) and the
console; captioning and QA predictions to OUT/<evaluator>/predictions.jsonl. Progress (batches,
ETA) is logged. docs/evaluation.md describes the suites and their options.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Sequence

from absl import flags
from absl import logging
import ml_collections

from vidistill import flags_lib
from vidistill.config_args import ConfigError


def define_flags() -> None:
  """Defines the flags this command uses that an earlier command in the process has not."""
  if "config" not in flags.FLAGS:
    flags_lib.define_config_and_workdir(
        workdir_help="Directory for results.json, results.md and predictions (created).")
  flags_lib.define_once(flags.DEFINE_string, "workdir", None, "Directory for results.json, "
                        "results.md and predictions (created).")
  flags_lib.define_once(flags.DEFINE_string, "checkpoint", None,
                        "Checkpoint directory of the model to evaluate.")
  flags_lib.define_once(flags.DEFINE_list, "only", [],
                        "Run only these entries of config.evals (comma-separated).")


def run_suite(config: ml_collections.ConfigDict, model: Any, workdir: str, *, checkpoint: str,
              only: Sequence[str] = ()) -> dict[str, Any]:
  """Runs the suite's evaluators on `model`, writing the report after each; returns results.json.

  `model` is what `evaluators.common.load_model(config, checkpoint)` returns (or a stand-in with
  the same protocol); `checkpoint` is recorded only.
  """
  # pylint: disable=g-import-not-at-top
  from vidistill.eval import report
  from vidistill.eval import evaluators as evaluators_lib
  for key in ("num_frames", "resolution"):
    if not config.get(key):
      raise ConfigError(f"config.{key} is 0 (the checkpoint's) but no checkpoint set it: load the "
                        f"model with evaluators.common.load_model, or set config.{key}")
  evaluators = evaluators_lib.from_config(config, output_dir=workdir, only=only)
  started = report.now()
  results: dict[str, dict[str, Any]] = {}
  info: dict[str, dict[str, Any]] = {}

  def doc(complete: bool) -> dict[str, Any]:
    return report.document(suite=config.suite, checkpoint=checkpoint, config=config,
                           results=results, evaluators=info, started=started, complete=complete)

  for number, evaluator in enumerate(evaluators, start=1):
    logging.info("eval %d/%d: %s (%s) on %s", number, len(evaluators), evaluator.name,
                 evaluator.kind, evaluator.options.annotations)
    start = time.monotonic()
    metrics: dict[str, Any] = {}
    for name, value in evaluator.run(model):
      if name in metrics:
        raise ValueError(f"evaluator {evaluator.name!r} yielded {name!r} twice")
      metrics[name] = value
    results[evaluator.name] = metrics
    info[evaluator.name] = {"kind": evaluator.kind, "annotations": evaluator.options.annotations,
                            "seconds": round(time.monotonic() - start, 3)}
    report.write(workdir, doc(complete=False))
  final = doc(complete=True)
  json_path, md_path = report.write(workdir, final)
  logging.info("eval: wrote %s and %s", json_path, md_path)
  return final


def main(argv: Sequence[str]) -> None:
  """Loads the model through the seam and runs the suite; one-line errors for bad input."""
  # pylint: disable=g-import-not-at-top
  from vidistill.eval import evaluators as evaluators_lib
  from vidistill.eval import report as report_lib
  from vidistill.eval.evaluators import common
  from vidistill.data.records import AnnotationError
  from vidistill.data.video_io import VideoError
  from vidistill.models.checkpoint_params import CheckpointError
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}; every input is a flag")
  config = flags_lib.config_from_flags()
  workdir = flags_lib.workdir_from_flags()
  if not flags.FLAGS.checkpoint:
    raise flags_lib.UsageError("--checkpoint is required: the directory of the model to evaluate")
  try:
    # Built first: a mistake in the suite config fails before the model is loaded.
    evaluators_lib.from_config(config, only=flags.FLAGS.only)
    model = common.load_model(config, flags.FLAGS.checkpoint)
    final = run_suite(config, model, workdir, checkpoint=flags.FLAGS.checkpoint,
                      only=flags.FLAGS.only)
  except (ConfigError, common.EvalDataError, AnnotationError, VideoError,
          NotImplementedError, FileNotFoundError, CheckpointError) as e:
    raise flags_lib.UsageError(str(e)) from None
  # The command's table; run_suite itself stays quiet (the pipeline and training call it).
  print(report_lib.console_table(final))


def run(prog: str, argv: Sequence[str]) -> None:
  """Entry point used by vidistill.cli: `vidistill eval [flags]`."""
  define_flags()
  # A second run in one process (tests, the pipeline) starts from the defaults again, also after
  # a run whose flags failed to parse half way.
  flags.FLAGS.unparse_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__]], main)
