"""The part every suite config (configs/eval/*.py) shares: arguments, sizes, the top-level block.

    arg = parse_suite_arg("retrieval", arg)           # in configs/eval/retrieval.py get_config
    config = suite_config("retrieval", arg, model_kind="dual_encoder")
    config.evals.msrvtt_1ka = entry(arg, "retrieval", reader="msrvtt_1ka", annotations=..., ...)

Arguments of every suite: `variant` (tiny | default | paper), `data=` (the root the variant's
paths hang from: the synthetic world for tiny/default, the folder of the downloaded data sets for
paper), `frames=`, `res=` (default: the checkpoint's; a value that differs from it is an
error), `batch=` (overrides the variant's), `max=` (evaluate only the first N records of every
entry). Anything else: `--config.key=value`.
"""
from __future__ import annotations

from typing import Any

import ml_collections

from vidistill import config_args
from vidistill.data.annotations import DEFAULT_EXTENSIONS

VARIANTS = ("tiny", "default", "paper")
# Frames and resolution are not here: they are the checkpoint's (its config.json `shapes`).
_SIZES = {
    "tiny": dict(batch_size=4, num_workers=2, buffer=8, shard_batches=False,
                 data="/tmp/vidistill_world"),
    "default": dict(batch_size=32, num_workers=4, buffer=64, shard_batches=True,
                    data="/tmp/vidistill_world"),
    "paper": dict(batch_size=64, num_workers=16, buffer=256, shard_batches=True, data="/data"),
}


def parse_suite_arg(suite: str, arg: str | None) -> ml_collections.ConfigDict:
  """`variant[,data=DIR][,frames=T][,res=PX][,batch=B][,max=N]`, checked."""
  arg = config_args.parse_arg(arg, variant="default", data="", frames=0, res=0, batch=0, max=0)
  if arg.variant not in VARIANTS:
    raise config_args.ConfigError(f"unknown variant {arg.variant!r} for configs/eval/{suite}.py; "
                                  f"expected one of {list(VARIANTS)}")
  arg.data = arg.data or _SIZES[arg.variant]["data"]
  return arg


def suite_config(suite: str, arg: ml_collections.ConfigDict,
                 model_kind: str) -> ml_collections.ConfigDict:
  """The top-level block of a suite config; the caller adds `config.evals.<name> = entry(...)`."""
  sizes = _SIZES[arg.variant]
  config = ml_collections.ConfigDict()
  config.suite = suite                  # Which suite (recorded in results.json).
  config.variant = arg.variant          # Which preset the sizes below come from (recorded).
  config.data = arg.data                # Root of the evaluation data (recorded).

  config.model = ml_collections.ConfigDict(dict(
      kind=model_kind,                  # What --checkpoint holds: "dual_encoder" or "vlm".
  ))
  config.num_frames = arg.frames       # Frames sampled uniformly per video; 0: the checkpoint's.
  config.resolution = arg.res           # Frame side in px (resize + centre crop); 0: the
                                        # checkpoint's. A value that differs from it is an error.
  config.batch_size = arg.batch or sizes["batch_size"]   # Videos / texts per model call.
  config.pad_batches = True             # Pad the last batch (one compiled shape per evaluator).
  config.shard_batches = sizes["shard_batches"]  # Place video batches on `mesh`, sharded over its
                                        # batch axes ('data', 'fsdp').
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))  # Mesh axis sizes.
  config.prefetch = ml_collections.ConfigDict(dict(
      num_workers=sizes["num_workers"],  # Threads decoding videos ahead of the model.
      buffer=sizes["buffer"],            # Videos decoded ahead (memory bound).
  ))
  config.video_extensions = DEFAULT_EXTENSIONS  # Tried for files named after a record's id.
  config.progress_every_s = 30.0        # Seconds between progress lines.
  config.evals = ml_collections.ConfigDict(sort_keys=False)  # name -> entry(kind, ...), run in
                                        # the order they are added.
  return config


def entry(arg: ml_collections.ConfigDict, kind: str, **options: Any) -> ml_collections.ConfigDict:
  """One evaluator entry: `kind` plus its options (the fields of the kind's options class in
  vidistill/eval/evaluators/<kind>.py); `max_examples` comes from the `max=` argument."""
  options.setdefault("max_examples", arg.max)
  options.setdefault("reader_options", {})
  return ml_collections.ConfigDict(dict(kind=kind, **options))
