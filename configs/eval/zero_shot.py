"""Zero-shot video classification with a dual encoder (docs/evaluation.md).

    vidistill eval --config configs/eval/zero_shot.py:paper,data=/data --checkpoint CKPT \
        --workdir OUT --only kinetics400

Variants: `tiny` / `default` (the synthetic world's test clips labelled by action, in the
Kinetics CSV layout: `annotations/test_kinetics.csv`), `paper` (Kinetics-400/600/700 validation
sets under `data=`, docs/datasets.md). Arguments: `data=`, `frames=`, `res=`, `batch=`, `max=`
(vidistill/eval/evaluators/config.py).
"""
import os

import ml_collections

from vidistill.eval.evaluators.config import entry, parse_suite_arg, suite_config
from vidistill.eval.metrics.classification import DEFAULT_TEMPLATES


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_suite_arg("zero_shot", arg)
  config = suite_config("zero_shot", arg, model_kind="dual_encoder")
  d = arg.data
  # Options of every zero-shot entry (vidistill/eval/evaluators/zero_shot.py):
  classify = dict(
      templates=DEFAULT_TEMPLATES,      # Prompts per class, "{}" = class name; averaged (CLIP).
      ties="pessimistic",               # A label tied with other classes ranks behind them.
      on_error="raise",                 # An undecodable video stops the run ("skip": left out).
  )
  if arg.variant in ("tiny", "default"):
    config.evals.synthetic_actions = entry(
        arg, "zero_shot", reader="kinetics",
        annotations=os.path.join(d, "annotations", "test_kinetics.csv"),
        video_root=os.path.join(d, "videos"),
        class_names="",                 # The labels found in the file.
        ks=(1, 5), **classify)
  else:
    for name in ("400", "600", "700"):
      root = os.path.join(d, f"k{name}")
      config.evals[f"kinetics{name}"] = entry(
          arg, "zero_shot", reader="kinetics", annotations=os.path.join(root, "validate.csv"),
          video_root=os.path.join(root, "videos"),
          class_names="",               # The labels found in validate.csv (all classes occur).
          ks=(1, 5), **classify)
  return config
