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
import re
from typing import Any, Mapping, Sequence

import jax
import orbax.checkpoint as ocp
from etils import epath
from absl import logging
from jax.experimental import multihost_utils

from vidistill import fs
from vidistill.train import state as state_lib

SUBDIR = "checkpoints"
COMMIT_FILE = "commit_success.txt"  # orbax's marker of a finalised step (atomicity_types).
# Replicated arrays smaller than this are written by one replica instead of being sliced across
# replicas: slicing a small array costs a compiled slice per device and saves nothing.
MIN_REPLICA_SLICE_BYTES = 1 << 20
_handler_configured = False


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be found, read, or mapped onto the model."""


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


# ----------------------------------------------------------------------- params from another run


def _locate(path: str) -> tuple[str, int]:
  """`path` = a workdir, its checkpoints/ directory, or one step directory -> (dir, step)."""
  path = fs.abspath(path)
  if fs.isdir(os.path.join(path, SUBDIR)):
    path = os.path.join(path, SUBDIR)
  name = os.path.basename(path)
  if name.isdigit() and fs.isdir(os.path.join(path, "params")):
    if not fs.isfile(os.path.join(path, COMMIT_FILE)):
      raise CheckpointError(f"{path} is not a finalised checkpoint (no {COMMIT_FILE})")
    return os.path.dirname(path), int(name)
  steps = [int(n) for n in fs.listdir(path) if n.isdigit() and fs.isfile(
      os.path.join(path, n, COMMIT_FILE))] if fs.isdir(path) else []
  if not steps:
    raise CheckpointError(
        f"no complete checkpoint under {path!r}; give a training workdir, its {SUBDIR}/ "
        "directory, or one step directory")
  return path, max(steps)


def _metadata_tree(directory: str, step: int) -> Any:
  handler = ocp.PyTreeCheckpointHandler()
  metadata = handler.metadata(epath.Path(directory) / str(step) / "params")
  return getattr(metadata, "tree", metadata)


def _map_name(name: str, params_map: Sequence[Sequence[str]] | None) -> str | None:
  if not params_map:
    return name
  for pair in params_map:
    if len(pair) != 2:
      raise CheckpointError(f"init.params_map entry {pair!r} is not a (regex_from, regex_to) pair")
    match = re.fullmatch(pair[0], name)
    if match:
      return match.expand(pair[1])
  return None


def _filter_tree(tree: Any, keep: Mapping[str, Any], prefix: str = "") -> Any:
  """The nested dict `tree` restricted to the paths in `keep`, leaves replaced by keep[path]."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      sub = _filter_tree(value, keep, name)
      if sub:
        out[key] = sub
    elif name in keep:
      out[key] = keep[name]
  return out


def check_params(path: str, params: Any, *, strict: bool = True,
                 params_map: Sequence[Sequence[str]] | None = None,
                 ) -> tuple[str, int, dict[str, str]]:
  """What `load_params` would load, checked without reading an array.

  `params` may be abstract (ShapeDtypeStructs). Returns (checkpoints dir, step, {checkpoint path:
  model path}); raises CheckpointError naming the missing, unknown or mis-shaped parameters.
  """
  directory, step = _locate(path)
  source = state_lib.flatten_dict(_metadata_tree(directory, step))
  dest = state_lib.flatten_dict(params)
  where = f"checkpoint {directory}/{step}"
  mapped = {s: _map_name(s, params_map) for s in source}
  unknown = sorted((s, d) for s, d in mapped.items() if d is not None and d not in dest)
  if unknown and (strict or params_map):
    raise CheckpointError(
        f"{where}: checkpoint parameters map to paths the model does not have: "
        f"{[f'{s} -> {d}' for s, d in unknown][:20]}; model paths look like "
        f"{sorted(dest)[:6]}. Fix init.params_map, or set init.strict=False to skip them")
  used = {s: d for s, d in mapped.items() if d is not None and d in dest}
  bad_shapes = [f"{s} {tuple(source[s].shape)} -> {d} {tuple(dest[d].shape)}"
                for s, d in used.items() if tuple(source[s].shape) != tuple(dest[d].shape)]
  if bad_shapes:
    more = f" and {len(bad_shapes) - 3} more" if len(bad_shapes) > 3 else ""
    raise CheckpointError(f"{where}: shapes differ (checkpoint -> model): {bad_shapes[:3]}{more}; "
                          "was it trained with another model size? Its config.json says which")
  if strict:
    missing = sorted(set(dest) - set(used.values()))
    if missing:
      raise CheckpointError(
          f"{where}: model parameters not in the checkpoint: {missing[:20]}"
          f"{' ...' if len(missing) > 20 else ''}. Set init.strict=False to keep their fresh "
          "initialisation, or map them with init.params_map")
  if not used:
    raise CheckpointError(f"{where}: no checkpoint parameter maps onto the model")
  return directory, step, used


def load_params(path: str, params: Any, *, strict: bool = True,
                params_map: Sequence[Sequence[str]] | None = None) -> Any:
  """Returns `params` with leaves replaced by those saved in the checkpoint at `path`.

  `params` is the freshly initialised, sharded tree of the model; loaded leaves take its
  shardings and dtypes. `params_map` lists `(regex_from, regex_to)` pairs over "/"-joined paths:
  a checkpoint path that fullmatches `regex_from` is loaded into `re.expand(regex_to)` (first
  pair wins; unmatched checkpoint paths are not loaded), e.g. `[("img/(.*)", "encoder/img/\\1")]`.
  Without a map every path loads into the same path.

  strict: every model parameter must be loaded, and (without a map) every checkpoint parameter
  used. Errors name the keys and shapes.
  """
  directory, step, used = check_params(path, params, strict=strict, params_map=params_map)
  source_tree = _metadata_tree(directory, step)
  dest = state_lib.flatten_dict(params)
  where = f"checkpoint {directory}/{step}"
  target = {s: jax.ShapeDtypeStruct(dest[d].shape, dest[d].dtype, sharding=dest[d].sharding)
            for s, d in used.items()}
  target_tree = _filter_tree(source_tree, target)
  restored = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
      epath.Path(directory) / str(step) / "params",
      args=ocp.args.PyTreeRestore(
          item=target_tree, restore_args=ocp.checkpoint_utils.construct_restore_args(target_tree),
          partial_restore=True))
  loaded = {used[s]: x for s, x in state_lib.flatten_dict(restored).items()}
  unused = len(state_lib.flatten_dict(source_tree)) - len(loaded)
  logging.info("%s: loaded %d of %d model parameters (%d checkpoint parameters not used)",
               where, len(loaded), len(dest), unused)
  return jax.tree_util.tree_map_with_path(
      lambda p, x: loaded.get(state_lib.path_name(p), x), params)
