"""Checkpoints through orbax: async periodic saves, keep-N, exact resume, and params-only loads.

Layout of `<workdir>/checkpoints/<step>/` (one orbax Composite per step):
  params/     the float32 master weights
  opt_state/  the optimizer state (nothing for frozen parameters)
  train/      {step, rng, nonfinite_step, skipped_steps}
  meta/       JSON: step, data_position (global batches consumed), examples_seen, process_count

A step directory is complete only once orbax has finalised it: it writes into
`<step>.orbax-checkpoint-tmp-*` and renames after writing `commit_success.txt`, so a run killed
mid-save leaves a tmp directory that is never read (and is deleted when the manager next opens).
A step directory without `commit_success.txt` (a save or an orbax deletion of an old step that a
kill interrupted, or a partial copy) is never restored: when the manager opens, it is removed, as
are `<step>.incomplete` directories that earlier versions set such steps aside as. At ViT-G + UL2-3B
scale each is tens of GB. The workdir may be remote (`gs://...`): orbax writes there through etils
epath, and locating and removing steps go through vidistill.fs (tf.io.gfile).
"""
from __future__ import annotations

import logging as pylogging
import os
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp
from etils import epath
from absl import logging
from jax.experimental import multihost_utils

from vidistill import fs
# Reading params from a finished run lives with the models (caption and eval load models too).
from vidistill.models.checkpoint_params import (  # pylint: disable=unused-import
    COMMIT_FILE, SUBDIR, CheckpointError, _locate, check_params, load_params)
from vidistill.train import state as state_lib

# Replicated arrays smaller than this are written by one replica instead of being sliced across
# replicas: slicing a small array costs a compiled slice per device and saves nothing.
MIN_REPLICA_SLICE_BYTES = 1 << 20
_handler_configured = False


def _train_item(state: state_lib.TrainState) -> dict[str, Any]:
  return {"step": state.step, "rng": state.rng, "nonfinite_step": state.nonfinite_step,
          "skipped_steps": state.skipped_steps}


def _configure_array_handler() -> None:
  global _handler_configured
  if not _handler_configured:
    # Overriding is the point (replica-parallel slices); orbax warns on every override, a line
    # between the progress lines of each process that saves.
    absl_logger, quiet = pylogging.getLogger("absl"), _DropMessage("Type handler registry")
    absl_logger.addFilter(quiet)
    try:
      ocp.type_handlers.register_type_handler(
          jax.Array, ocp.type_handlers.ArrayHandler(
              min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES), override=True)
    finally:
      absl_logger.removeFilter(quiet)
    _handler_configured = True


class _DropMessage(pylogging.Filter):
  def __init__(self, start: str):
    super().__init__()
    self.start = start

  def filter(self, record: pylogging.LogRecord) -> bool:
    return not str(record.msg).startswith(self.start)


class Checkpoints:
  """`<workdir>/checkpoints` as an orbax CheckpointManager; only complete steps are visible."""

  def __init__(self, directory: str, *, keep: int = 0, async_save: bool = True):
    _configure_array_handler()
    self.directory = fs.abspath(directory)
    if jax.process_index() == 0 and fs.isdir(self.directory):
      _remove_incomplete(self.directory)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("vidistill_checkpoints_set_aside")
    policy = ocp.checkpoint_managers.LatestN(keep) if keep else None
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def read_meta(self, step: int) -> dict[str, Any]:
    """The JSON `meta` item of `step` (data position etc.), without reading any array."""
    return dict(self._manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"])

  def save(self, step: int, state: state_lib.TrainState, meta: Mapping[str, Any]) -> None:
    """Starts an async save of `state` at `step` (returns once arrays are copied off device)."""
    self._manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(state.params),
        opt_state=ocp.args.StandardSave(state.opt_state),
        train=ocp.args.StandardSave(_train_item(state)),
        meta=ocp.args.JsonSave(dict(meta))), force=True)

  def restore(self, step: int, abstract_state: state_lib.TrainState,
              ) -> tuple[state_lib.TrainState, dict[str, Any]]:
    """Restores `step` into the shardings of `abstract_state` (ShapeDtypeStructs with sharding)."""
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(abstract_state.params),
          opt_state=ocp.args.StandardRestore(abstract_state.opt_state),
          train=ocp.args.StandardRestore(_train_item(abstract_state)),
          meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(
          f"checkpoint {self.directory}/{step} does not match this run's model/optimizer "
          f"({type(e).__name__}: {e}); resume with the config that wrote it, or start in a new "
          "workdir and load its params with config.init.checkpoint") from e
    train = out["train"]
    state = state_lib.TrainState(
        step=train["step"], params=out["params"], opt_state=out["opt_state"], rng=train["rng"],
        nonfinite_step=train["nonfinite_step"], skipped_steps=train["skipped_steps"])
    return state, dict(out["meta"])

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def _remove_incomplete(directory: str) -> None:
  """Deletes step directories without orbax's commit marker and old `<step>.incomplete` ones."""
  removed, complete = [], []
  for name in sorted(fs.listdir(directory)):
    path = os.path.join(directory, name)
    stem = name[:-len(".incomplete")] if name.endswith(".incomplete") else name
    if not stem.isdigit() or not fs.isdir(path):
      continue
    if name == stem and fs.isfile(os.path.join(path, COMMIT_FILE)):
      complete.append(int(name))
      continue
    fs.rmtree(path)
    removed.append(name)
  if removed:
    logging.warning("removed %d unfinished checkpoint director%s under %s (a save or a deletion "
                    "was interrupted): %s; the latest complete step is %s", len(removed),
                    "y" if len(removed) == 1 else "ies", directory, ", ".join(removed),
                    max(complete) if complete else "none")
