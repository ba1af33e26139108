r"""`vidistill caption`: pseudo-caption unlabeled videos with an adapted VLM; multi-host, resumable.

    vidistill caption --config configs/caption/pseudo_caption.py:default --checkpoint CKPT \
        --input MANIFEST_OR_GLOB_OR_SHARDS --output OUT [--video_root DIR]

--input is a manifest (our CSV/JSONL with id,path,start,end; InternVid JSONL; VideoCC CSV; or
--config.manifest_format=<reader>), a glob or folder of video files, or example shards. Every
process of a multi-host job runs this same command (see --coordinator_address etc., or let JAX
detect the cluster); each takes the units k % process_count == process_index. Rerun the same
command after a crash: finished units are skipped, unfinished ones redone. Captions land in
OUT/captions/ (one file per unit), bad videos in OUT/failures/; docs/captioning.md has the details.
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

from absl import flags
from ml_collections import config_flags

from vidistill import flags_lib
from vidistill.config_args import ConfigError
from vidistill.data import caption_output
from vidistill.parallel import multihost


def define_flags() -> None:
  if "input" in flags.FLAGS:  # Defined by this command alone; --config/--checkpoint are shared names.
    return
  config_flags.DEFINE_config_file(
      "config", None,
      "ml_collections config file, optionally with an argument: "
      "`configs/caption/pseudo_caption.py:tiny`. Override any field with `--config.field=value`; "
      "unknown fields are an error.", lock_config=True)
  flags.DEFINE_string("checkpoint", None, "Directory of the adapted video VLM checkpoint.")
  flags.DEFINE_string("input", None, "Manifest file, glob / folder of videos, or example shards.")
  flags.DEFINE_string("output", None, "Output directory (created; reused to resume).")
  flags.DEFINE_string("video_root", None, "Folder relative manifest paths and ids resolve against "
                      "(default: config.video_root).")
  multihost.define_flags()


def main(argv: Sequence[str]) -> None:
  """Runs this process's share of the job; one-line errors for bad input or settings."""
  from vidistill.caption import captioner as captioner_lib  # pylint: disable=g-import-not-at-top
  from vidistill.caption import job  # pylint: disable=g-import-not-at-top
  from vidistill.caption import peers  # pylint: disable=g-import-not-at-top
  from vidistill.caption import units  # pylint: disable=g-import-not-at-top
  from vidistill.caption.manifest import ManifestError  # pylint: disable=g-import-not-at-top
  from vidistill.data.records import AnnotationError  # pylint: disable=g-import-not-at-top
  from vidistill.models.checkpoint_params import CheckpointError  # pylint: disable=g-import-not-at-top
  if argv:
    raise flags_lib.UsageError(f"unexpected arguments {list(argv)}; every input is a flag")
  config = flags_lib.config_from_flags()
  f = flags.FLAGS
  for name in ("checkpoint", "input", "output"):
    if not getattr(f, name):
      raise flags_lib.UsageError(f"--{name} is required (see `vidistill caption --help`)")
  try:
    multihost.initialize()
    import jax  # pylint: disable=g-import-not-at-top
    multihost.detach()  # Processes never compute together; each watches the others (peers.py).
    captioner = captioner_lib.load_captioner(config, f.checkpoint)
    if jax.process_count() > 1:
      heartbeat = peers.Heartbeat(f.output, jax.process_index(), config.peer_timeout_s / 5)
    summary = job.run_job(config, captioner, f.input, f.output, video_root=f.video_root,
                          process_index=jax.process_index(), process_count=jax.process_count())
  except (ConfigError, ManifestError, AnnotationError, units.PlanMismatchError,
          multihost.MultihostError, FileNotFoundError, CheckpointError) as e:
    raise flags_lib.UsageError(str(e)) from None
  if summary.process_count == 1:
    overall = caption_output.status(f.output)
    print(json.dumps({"process": summary.as_dict(), "output": overall}, sort_keys=True))
    return
  overall, gone = peers.wait_for_peers(f.output, summary.process_index, summary.process_count,
                                       timeout_s=config.peer_timeout_s)
  heartbeat.stop()
  print(json.dumps({"process": summary.as_dict(), "output": overall,
                    "processes_gone": sorted(gone)}, sort_keys=True), flush=True)
  if gone:
    raise flags_lib.CommandError(
        peers.lost_message(summary.process_index, gone, config.peer_timeout_s),
        peers.EXIT_PEER_LOST)


def run(prog: str, argv: Sequence[str]) -> None:
  define_flags()
  flags_lib.run_command(prog, argv, __doc__, [sys.modules[__name__], multihost], main)
