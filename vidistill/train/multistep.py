"""Several update steps in one compiled call: `lax.scan` of the step over a stack of batches.

On a CPU host a step of the miniature costs a few tens of milliseconds, and every call pays the
dispatch, the host-to-device batch and a fresh XLA scratch buffer; k steps a call pay them once
(docs/performance.md). Each step in the scan is the same update as a single call, on the same
batch, so a run's result does not depend on k. Calls never cross a step at which the trainer logs,
checkpoints or evaluates: a checkpoint always falls on a call boundary, so a resumed run splits the
remaining steps into the same calls as an uninterrupted one.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def scan_steps(step_fn: Callable[[Any, Any], tuple[Any, Any]]) -> Callable[[Any, Any], Any]:
  """(state, batches [k, B, ...]) -> (state after k steps, metrics stacked [k])."""
  def many(state, batches):
    return jax.lax.scan(step_fn, state, batches)
  return many


def stacked_sharding(batch_sharding: NamedSharding) -> NamedSharding:
  """The batch sharding with a leading, replicated steps axis."""
  return NamedSharding(batch_sharding.mesh, P(None, *batch_sharding.spec))


def steps_in_call(step: int, most: int, total: int, every: Sequence[int]) -> int:
  """How many steps the call starting after `step` steps runs: `most` when none of the steps it
  would finish before its last is a multiple of a nonzero entry of `every` and it does not run past
  `total`, else 1."""
  if most <= 1 or step + most > total:
    return 1
  for done in range(step + 1, step + most):
    if any(n and done % n == 0 for n in every):
      return 1
  return most


def stack(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Host batches -> one dict of arrays [k, rows, ...]."""
  return {key: np.stack([b[key] for b in batches]) for key in batches[0]}
