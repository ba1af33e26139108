"""The update step, a pure function: (train state, global batch) -> (new state, step metrics).

Gradient accumulation runs `accum_steps` micro-batches inside the step (a `lax.scan` summing
gradients, then one optimizer update; not `optax.MultiSteps`, so one call is one update and the
step counter, the schedule and the checkpoints count updates). Compute may be bfloat16; the
master weights, gradients and optimizer state stay float32. A NaN/Inf loss or gradient leaves
params and optimizer state as they were and is recorded in the state.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from vidistill.train import state as state_lib

StepFn = Callable[[state_lib.TrainState, Any], tuple[state_lib.TrainState, dict[str, jax.Array]]]


def to_float32(tree: Any) -> Any:
  """Floating leaves as float32 (the master weights), arrays or ShapeDtypeStructs."""
  def one(x):
    if not jnp.issubdtype(x.dtype, jnp.floating):
      return x
    if isinstance(x, jax.ShapeDtypeStruct):
      return jax.ShapeDtypeStruct(x.shape, jnp.float32, sharding=x.sharding)
    return x.astype(jnp.float32)
  return jax.tree.map(one, tree)


def cast_floats(tree: Any, dtype: Any) -> Any:
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def make_train_step(model: Any, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    frozen_mask: Any, *, accum_steps: int, compute_dtype: Any,
                    on_nonfinite: str, micro_batch_sharding: NamedSharding | None = None,
                    ) -> StepFn:
  """The pure update: (state, global batch) -> (new state, metrics of this step)."""

  def loss_and_grads(params, batch, rng):
    def loss_of(trainable):
      # Frozen leaves: no gradient is even computed for them.
      p = jax.tree.map(lambda x, f: jax.lax.stop_gradient(x) if f else x, trainable, frozen_mask)
      loss, aux = model.loss_fn(cast_floats(p, compute_dtype), batch, rng, train=True)
      return loss.astype(jnp.float32), {k: jnp.asarray(v, jnp.float32) for k, v in aux.items()}
    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    return loss, aux, grads

  def step_fn(state: state_lib.TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    if accum_steps == 1:
      loss, aux, grads = loss_and_grads(state.params, batch, rng)
    else:
      # Micro-batch i takes rows i, i + A, i + 2A, ...: every device keeps its own rows, so the
      # split needs no communication.
      def split(x):
        x = x.reshape((x.shape[0] // accum_steps, accum_steps) + x.shape[1:]).swapaxes(0, 1)
        if micro_batch_sharding is not None:
          spec = P(None, *micro_batch_sharding.spec)
          x = jax.lax.with_sharding_constraint(x, NamedSharding(micro_batch_sharding.mesh, spec))
        return x
      micro = jax.tree.map(split, batch)

      def body(carry, xs):
        i, mb = xs
        out = loss_and_grads(state.params, mb, jax.random.fold_in(rng, i))
        return jax.tree.map(jnp.add, carry, out), None

      first = jax.tree.map(lambda x: x[0], micro)
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                           jax.eval_shape(loss_and_grads, state.params, first, rng))
      total, _ = jax.lax.scan(body, zeros, (jnp.arange(accum_steps), micro))
      loss, aux, grads = jax.tree.map(lambda x: x / accum_steps, total)

    trainable = jax.tree.map(lambda g, f: jnp.zeros([], g.dtype) if f else g, grads, frozen_mask)
    grad_norm = optax.global_norm(trainable)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    apply = finite if on_nonfinite == "skip" else finite & (state.nonfinite_step < 0)
    updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
    # Frozen leaves are returned untouched (p + 0 would turn -0.0 into +0.0).
    new_params = jax.tree.map(lambda p, u, f: p if f else (p + u.astype(p.dtype)),
                              state.params, updates, frozen_mask)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, old)
    new_state = state.replace(
        step=state.step + 1,
        params=keep(new_params, state.params),
        opt_state=keep(new_opt_state, state.opt_state),
        nonfinite_step=jnp.where(~finite & (state.nonfinite_step < 0), state.step + 1,
                                 state.nonfinite_step),
        skipped_steps=state.skipped_steps + (~apply).astype(jnp.int32))
    metrics = {"loss": loss, **aux, "grad_norm": grad_norm,
               "learning_rate": schedule(state.step), "nonfinite": (~finite).astype(jnp.float32)}
    return new_state, metrics

  return step_fn
