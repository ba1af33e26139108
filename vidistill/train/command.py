"""`vidistill train`: one stage of the method, from its config.

    vidistill train --config configs/train/visual_adaptation.py:tiny,world=DIR,init=PREV \
        --workdir DIR [--config.total_steps=200] [--dry_run]

Stages (configs/train/): image_pretrain (the stand-in for a pretrained image VLM),
visual_adaptation (LM frozen), language_adaptation (vision frozen), dual_encoder (contrastive, with
a caption source). Rerunning the same command resumes from the workdir's last complete checkpoint;
`init=` (config.init.checkpoint) starts a new stage from a previous stage's workdir. The workdir
gets config.json, checkpoints/ and TensorBoard metrics. Multi-host: run the same command on every
host (jax.distributed flags below, or let JAX detect the cluster).

`--write_shards PREFIX` trains nothing: it writes the stage's examples (frames and token ids, as
the trainer reads them) into ArrayRecord shards; `--config.data.shards=PREFIX` then streams them
through Grain, each host reading only its rows, so no host holds the split (docs/training.md).

`--compile_topology=v5e:16x16` trains nothing: it compiles the stage's update step ahead of time
for that TPU topology on this (CPU) host, and for a VLM stage the captioning job's decode, prints
per-device memory against the chip's HBM, FLOPs, XLA's estimated step time, MFU and the schedule's
days, writes <workdir>/compile_<topology>.json, and exits 1 naming what dominates if a program does
not fit. Needs libtpu: pip install -e '.[tpu]'. The figures are XLA's estimates (docs/scaling.md).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import flags

from vidistill import flags_lib
from vidistill.config_args import ConfigError
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
  flags_lib.define_once(flags.DEFINE_string, "write_shards", "", "PREFIX: write the stage's "
                        "training examples (frames and tokens, as the trainer reads them) as "
                        "ArrayRecord shards PREFIX-0000i-of-0000n.array_record and train nothing; "
                        "then train with --config.data.shards=PREFIX to stream them (Grain).")
  flags_lib.define_once(flags.DEFINE_integer, "num_shards", 8, "With --write_shards: the number "
                        "of shard files (at least the number of hosts that will read them).")
  flags_lib.define_once(flags.DEFINE_string, "compile_topology", "", "A TPU topology libtpu "
                        "knows (v5e:16x16, v5p:8x8x4, v4:4x4x4, v6e:16x16): compile the stage for "
                        "it ahead of time on this host and report memory, FLOPs and estimated "
                        "time (needs pip install -e '.[tpu]'); train nothing.")
  flags_lib.define_once(flags.DEFINE_string, "compile_caption_config", "", "With "
                        "--compile_topology on a VLM stage: the captioning config whose batch the "
                        "decode is compiled at; default configs/caption/pseudo_caption.py with "
                        "the stage's variant; 'none' skips the decode.")


def main(argv: Sequence[str]) -> None:
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}")
  config = flags_lib.config_from_flags()
  if flags.FLAGS.dry_run:  # first: --dry_run on a --compile_topology command only resolves it
    print(json.dumps(stage.dry_run(config), indent=2))
    return
  if flags.FLAGS.compile_topology:
    compile_for_topology(config, flags.FLAGS.compile_topology, flags_lib.workdir_from_flags(),
                         flags.FLAGS.compile_caption_config)
    return
  if flags.FLAGS.write_shards:
    write_shards(config, flags.FLAGS.write_shards, flags.FLAGS.num_shards)
    return
  workdir = flags_lib.workdir_from_flags()
  multihost.initialize()
  # pylint: disable=g-import-not-at-top
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


def write_shards(config, output: str, num_shards: int) -> None:
  """`--write_shards`: the stage's examples as ArrayRecord shards, one line on stdout."""
  from vidistill.data.vocab import VocabularyError  # pylint: disable=g-import-not-at-top
  from vidistill.data.shards import ShardError  # pylint: disable=g-import-not-at-top
  from vidistill.train.stage_input import StageDataError  # pylint: disable=g-import-not-at-top
  if num_shards < 1:
    raise flags_lib.UsageError(f"--num_shards={num_shards} must be >= 1")
  try:
    paths, count = stage.write_shards(config, output, num_shards)
  except (VocabularyError, ShardError, StageDataError, FileNotFoundError) as e:
    raise flags_lib.UsageError(str(e)) from None
  print(f"wrote {count} examples into {len(paths)} shard(s): {output}-*; train on them with "
        f"--config.data.shards={output}")


def compile_for_topology(config, topology_name: str, workdir: str, caption_spec: str = "") -> None:
  """`--compile_topology`: the table on stdout, the JSON in `workdir`, exit 1 if it does not fit."""
  from vidistill import config_args  # pylint: disable=g-import-not-at-top
  from vidistill.train import compile_topology  # pylint: disable=g-import-not-at-top
  caption = None
  from vidistill.models import build  # pylint: disable=g-import-not-at-top
  if build.family(config.model.kind) == "vlm" and caption_spec != "none":
    if not caption_spec:
      repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
      variant = {"tiny": "tiny", "paper": "paper"}.get(config.get("variant"), "default")
      caption_spec = os.path.join(repo, "configs", "caption", f"pseudo_caption.py:{variant}")
    caption = config_args.load_config(caption_spec)
  try:
    stats = compile_topology.compile_stage(config, topology_name, caption_config=caption)
  except compile_topology.TopologyError as e:
    raise flags_lib.UsageError(str(e)) from None
  except compile_topology.DoesNotFitError as e:
    print(f"vidistill train: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(compile_topology.table(stats))
  path = compile_topology.write_json(stats, workdir, topology_name)
  print(f"\nwritten: {path} (XLA's estimates for {topology_name}, not TPU measurements)")
  try:
    compile_topology.check_fits(stats)
  except compile_topology.DoesNotFitError as e:
    print(f"vidistill train: error: {e}", file=sys.stderr)
    sys.exit(1)


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  flags_lib.run_command(prog, argv, __doc__, [flags_lib, sys.modules[__name__], multihost], main)
