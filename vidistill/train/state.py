"""The train state (params + optimizer state + step + rng) and regex masks over parameter paths.

Parameters are addressed by their "/"-joined path (vidistill/models/param_paths.py). Freezing,
weight-decay masks and checkpoint key maps are lists of regexes over those paths, matched with
`re.fullmatch`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from vidistill.config_args import ConfigError
from vidistill.models import param_paths


@flax.struct.dataclass
class TrainState:
  """Everything a step reads and writes; checkpointed whole so a resumed run continues exactly.

  step             int32 []        number of updates applied so far (= global batches consumed)
  params           pytree float32  master weights (always float32; compute may be bfloat16)
  opt_state        optax state     nothing for frozen parameters
  rng              uint32 [2]      the run's base key; step `s` uses fold_in(rng, s)
  nonfinite_step   int32 []        first step (1-based, as logged) with a NaN/Inf loss or gradient;
                                   -1 if none
  skipped_steps    int32 []        steps whose update was dropped because of a NaN/Inf
  """
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  nonfinite_step: jax.Array
  skipped_steps: jax.Array


def new_state(params: Any, opt_state: Any, rng: jax.Array) -> TrainState:
  return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=opt_state, rng=rng,
                    nonfinite_step=jnp.full([], -1, jnp.int32),
                    skipped_steps=jnp.zeros([], jnp.int32))


def regex_mask(tree: Any, patterns: Sequence[str], *, what: str = "pattern",
               must_match: bool = True) -> Any:
  """Pytree of bools like `tree`: True where the leaf's path fullmatches one of `patterns`.

  With `must_match`, a pattern that matches no path is a ConfigError naming it (a typo in a
  freezing pattern would otherwise silently train everything).
  """
  compiled = []
  for p in patterns or ():
    try:
      compiled.append(re.compile(p))
    except re.error as e:
      raise ConfigError(f"{what} {p!r} is not a valid regex: {e}") from None
  names = param_paths.path_names(tree)
  if must_match:
    for p, rx in zip(patterns or (), compiled):
      if not any(rx.fullmatch(n) for n in names):
        raise ConfigError(
            f"{what} {p!r} matches no parameter; parameter paths look like: "
            f"{names[:6]}{' ...' if len(names) > 6 else ''}")
  return jax.tree_util.tree_map_with_path(
      lambda path, _: any(rx.fullmatch(param_paths.path_name(path)) for rx in compiled),
      tree)


def count_params(tree: Any, mask: Any | None = None) -> int:
  """Number of scalars in `tree` (only where `mask` is True, when given)."""
  sizes = [math.prod(x.shape) for x in jax.tree.leaves(tree)]
  if mask is None:
    return int(sum(sizes))
  return int(sum(s for s, m in zip(sizes, jax.tree.leaves(mask)) if m))


def opt_state_shardings(abstract_opt_state: Any, abstract_params: Any, param_shardings: Any,
                        mesh: Mesh) -> Any:
  """Shardings of the optimizer state: a leaf shaped like a parameter whose path ends with that
  parameter's path (Adam's mu/nu, momentum) is sharded like it; the rest (counters, factored
  Adafactor statistics) is replicated."""
  by_name = {}
  for (path, x), sharding in zip(jax.tree_util.tree_flatten_with_path(abstract_params)[0],
                                 jax.tree.leaves(param_shardings)):
    by_name[param_paths.path_name(path)] = (tuple(x.shape), sharding)
  replicated = NamedSharding(mesh, P())

  def one(path, x):
    parts = param_paths.path_name(path).split("/")
    for i in range(len(parts)):  # Longest suffix first.
      shape, sharding = by_name.get("/".join(parts[i:]), (None, None))
      if shape == tuple(x.shape):
        return sharding
    return replicated

  return jax.tree_util.tree_map_with_path(one, abstract_opt_state)


def state_shardings(abstract_opt_state: Any, abstract_params: Any, param_shardings: Any,
                    mesh: Mesh) -> TrainState:
  """A TrainState of NamedShardings: params as the rules say, optimizer state like its params,
  scalars replicated."""
  replicated = NamedSharding(mesh, P())
  return TrainState(
      step=replicated, params=param_shardings,
      opt_state=opt_state_shardings(abstract_opt_state, abstract_params, param_shardings, mesh),
      rng=replicated, nonfinite_step=replicated, skipped_steps=replicated)
