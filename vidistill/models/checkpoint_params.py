"""Parameters of a finished run back from its orbax checkpoints (no optimizer state).

The layout is the trainer's (vidistill/train/checkpoints.py): `<workdir>/checkpoints/<step>/params`,
a step complete once orbax wrote `commit_success.txt` in it. Kept beside the models because
captioning and evaluation load trained models without the training code.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from vidistill import fs
from vidistill.models import param_paths

SUBDIR = "checkpoints"
COMMIT_FILE = "commit_success.txt"  # orbax's marker of a finalised step (atomicity_types).


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be found, read, or mapped onto the model."""


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
  source = param_paths.flatten(_metadata_tree(directory, step))
  dest = param_paths.flatten(params)
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
  dest = param_paths.flatten(params)
  where = f"checkpoint {directory}/{step}"
  target = {s: jax.ShapeDtypeStruct(dest[d].shape, dest[d].dtype, sharding=dest[d].sharding)
            for s, d in used.items()}
  target_tree = _filter_tree(source_tree, target)
  restored = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
      epath.Path(directory) / str(step) / "params",
      args=ocp.args.PyTreeRestore(
          item=target_tree, restore_args=ocp.checkpoint_utils.construct_restore_args(target_tree),
          partial_restore=True))
  loaded = {used[s]: x for s, x in param_paths.flatten(restored).items()}
  unused = len(param_paths.flatten(source_tree)) - len(loaded)
  logging.info("%s: loaded %d of %d model parameters (%d checkpoint parameters not used)",
               where, len(loaded), len(dest), unused)
  return jax.tree_util.tree_map_with_path(
      lambda p, x: loaded.get(param_paths.path_name(p), x), params)
