"""What the trainer needs from a model (t5x's BaseModel contract, as a structural Protocol).

Any object with these members can be trained: the VLM (`vidistill/models/vlm.py`), the dual encoder,
or a toy model in a test. Nothing is registered or subclassed.

  init(rng, batch) -> variables
      Flax variables `{"params": ...}` with every parameter boxed by `nn.LogicallyPartitioned`
      (created with `nn.with_logical_partitioning`), so the trainer can shard them by the logical
      rules before allocating. Called under `jax.eval_shape` and `jax.jit`; must accept a batch of
      any leading size (the trainer initialises with one example).
  loss_fn(params, batch, rng, *, train=True) -> (loss, metrics)
      `params` unboxed; `loss` a float32 scalar, the mean over the batch; `metrics` a dict of
      scalars (averaged over gradient-accumulation micro-batches and logged).
  flops_per_example (optional)
      FORWARD FLOPs of one example, a float or a function of the (host, numpy) batch. The trainer
      counts a training step as 3x forward (backward ~ 2x forward) for model FLOPs utilisation.
      Without it the trainer takes the FLOPs that XLA counts for the compiled step.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import jax
import numpy as np

Batch = Mapping[str, Any]
Variables = Mapping[str, Any]
Metrics = Mapping[str, jax.Array]

# Training FLOPs per forward FLOP: forward once, backward twice (activations and weights).
TRAIN_FLOPS_PER_FORWARD_FLOP = 3.0


@runtime_checkable
class TrainableModel(Protocol):
  """The members the trainer calls; see the module docstring for the contract."""

  def init(self, rng: jax.Array, batch: Batch) -> Variables:
    ...

  def loss_fn(self, params: Any, batch: Batch, rng: jax.Array, *,
              train: bool = True) -> tuple[jax.Array, Metrics]:
    ...


def forward_flops_per_example(model: Any, batch: Mapping[str, np.ndarray]) -> float | None:
  """The model's forward FLOPs per example, or None when the model does not say."""
  flops = getattr(model, "flops_per_example", None)
  if flops is None:
    return None
  if callable(flops):
    flops = flops(batch)
  return float(flops)
