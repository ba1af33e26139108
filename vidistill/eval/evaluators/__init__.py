"""Evaluators: drive a model over an evaluation split and yield `(metric name, value)` pairs.

    __init__.py    the table of evaluator kinds (`KINDS`) and `from_config`.
    common.py      the model protocols (VideoTextEmbedder, VideoTextGenerator), the `load_model`
                   seam, option parsing, the jit cache and mesh helpers.
    base.py        `Evaluator`, the base of the kinds.
    config.py      what the suite configs (configs/eval/*.py) share: arguments, sizes, entries.
    inputs.py      annotation records -> decoded frames -> padded (optionally sharded) batches,
                   progress logging.
    retrieval.py   dual encoder: text -> video and video -> text R@k / MdR / MnR.
    captioning.py  VLM: decode captions, BLEU-1..4 / ROUGE-L / CIDEr-D.
    qa.py          VLM: open-ended answers by decoding, multiple choice by candidate log-likelihood.
    zero_shot.py   dual encoder: class names through prompt templates, top-k accuracy.

`vidistill eval` (vidistill/eval/command.py) builds the evaluators of a suite config
(configs/eval/*.py) and writes WORKDIR/results.json and results.md (vidistill/eval/report.py).
docs/evaluation.md describes the suites and the config entries.
"""
from __future__ import annotations

import os
from typing import Sequence

import ml_collections

from vidistill.config_args import ConfigError
from vidistill.eval.evaluators import base, common, inputs
from vidistill.eval.evaluators.captioning import CaptioningEvaluator
from vidistill.eval.evaluators.qa import QAEvaluator
from vidistill.eval.evaluators.retrieval import RetrievalEvaluator
from vidistill.eval.evaluators.zero_shot import ZeroShotEvaluator

# The one table of evaluator kinds: `kind` of a config.evals entry -> its class.
KINDS: dict[str, type[base.Evaluator]] = {
    "retrieval": RetrievalEvaluator, "captioning": CaptioningEvaluator, "qa": QAEvaluator,
    "zero_shot": ZeroShotEvaluator}


def from_config(config: ml_collections.ConfigDict, *, output_dir: str | None = None,
                only: Sequence[str] = (), settings: common.Settings | None = None,
                check_files: bool = True) -> list[base.Evaluator]:
  """The evaluators of `config.evals` (all, or those named in `only`), in the entries' order.

  Checks every entry (kind, options and, with `check_files`, that its files exist) before
  returning, so a mistake in the last entry fails before the first one runs.
  """
  entries = config.evals
  if not entries:
    raise ConfigError("config.evals is empty: a suite needs at least one evaluator entry")
  unknown = sorted(set(only) - set(entries))
  if unknown:
    raise ConfigError(f"--only names {unknown}, which are not in config.evals {list(entries)}")
  settings = settings or common.settings_from_config(config)
  kinds = KINDS
  evaluators = []
  for name, entry in entries.items():
    if only and name not in only:
      continue
    kind = entry.get("kind") if hasattr(entry, "get") else None
    if kind not in kinds:
      raise ConfigError(f"config.evals.{name}.kind={kind!r} is not an evaluator kind; expected "
                        f"one of {sorted(kinds)}")
    cls = kinds[kind]
    options = common.parse_options(cls.options_class, entry, f"config.evals.{name}")
    evaluator = cls(name, options, settings,
                    os.path.join(output_dir, name) if output_dir else None)
    inputs.check_data(options, evaluator.where, files=check_files)
    evaluators.append(evaluator)
  return evaluators
