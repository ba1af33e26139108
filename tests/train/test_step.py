"""The pure update step: accumulation, NaN handling, freezing, mixed precision, rng per step."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toy
from vidistill.train import optim
from vidistill.train import state as state_lib
from vidistill.train import step as step_lib

B = 8


def _batch(seed=0, nan_row=None):
  src = toy.ToySource(n=64, nan_index=nan_row)
  rows = [src[seed * B + i] for i in range(B)]
  return {"x": jnp.asarray(np.stack([r["x"] for r in rows])),
          "y": jnp.asarray(np.stack([r["y"] for r in rows]))}


def _setup(model, frozen=(), accum=1, on_nonfinite="stop", dtype=jnp.float32, lr=0.05,
           micro_batch_sharding=None):
  variables = model.init(jax.random.PRNGKey(0), {"x": np.zeros((1, toy.DIM), np.float32)})
  params = jax.tree.map(lambda b: b.value, variables["params"],
                        is_leaf=lambda b: hasattr(b, "names"))
  schedule = optax.constant_schedule(lr)
  tx, mask = optim.make_optimizer({"name": "adamw", "grad_clip_norm": 1.0}, schedule, params,
                                  frozen)
  state = state_lib.new_state(params, tx.init(params), jax.random.PRNGKey(1))
  fn = step_lib.make_train_step(model, tx, schedule, mask, accum_steps=accum,
                                compute_dtype=dtype, on_nonfinite=on_nonfinite,
                                micro_batch_sharding=micro_batch_sharding)
  return state, jax.jit(fn)


def test_accumulated_micro_batches_equal_the_full_batch():
  model = toy.ToyModel(noise=0.0)
  s1, step1 = _setup(model, accum=1)
  # Micro-batches constrained to a 2-device data axis, as the trainer does on its mesh.
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:2]), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  s4, step4 = _setup(model, accum=4, micro_batch_sharding=sharding)
  for i in range(2):
    s1, m1 = step1(s1, _batch(i))
    s4, m4 = step4(s4, _batch(i))
    assert float(m1["loss"]) == pytest.approx(float(m4["loss"]), rel=1e-5)
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s4.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_rng_is_folded_with_the_step():
  model = toy.ToyModel(noise=1.0)
  state, step = _setup(model, lr=0.0)
  losses = []
  for _ in range(3):  # Same params (lr 0) and batch: only the step's noise differs.
    state, m = step(state, _batch(0))
    losses.append(float(m["loss"]))
  assert len(set(losses)) == 3
  again, _ = _setup(model, lr=0.0)
  _, m = step(again, _batch(0))
  assert float(m["loss"]) == losses[0]  # And it is a function of (seed, step) only.


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_nonfinite_step_never_reaches_the_params(mode):
  state, step = _setup(toy.ToyModel(), on_nonfinite=mode)
  state, _ = step(state, _batch(0))
  before = jax.device_get(state.params)
  state, m = step(state, _batch(1, nan_row=B + 2))
  assert float(m["nonfinite"]) == 1.0 and int(state.nonfinite_step) == 2
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, np.asarray(b))
  state, _ = step(state, _batch(2))
  moved = any(not np.array_equal(a, np.asarray(b))
              for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)))
  # "stop" freezes the state at the bad step (the loop raises); "skip" trains on.
  assert moved == (mode == "skip")
  assert int(state.skipped_steps) == (1 if mode == "skip" else 2)
  assert int(state.step) == 3


def test_frozen_leaves_are_returned_untouched_even_negative_zero():
  model = toy.ToyModel()
  state, step = _setup(model, frozen=("encoder/.*",))
  kernel = state.params["encoder"]["kernel"].at[0, 0].set(-0.0)
  state = state.replace(params={**state.params, "encoder": {**state.params["encoder"],
                                                            "kernel": kernel}})
  before = jax.device_get(state.params["encoder"])
  for i in range(2):
    state, _ = step(state, _batch(i))
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params["encoder"])):
    assert np.array_equal(a.view(np.uint32), np.asarray(b).view(np.uint32))


def test_bfloat16_compute_keeps_float32_master_weights_and_moments():
  state, step = _setup(toy.ToyModel(), dtype=jnp.bfloat16)
  state, m = step(state, _batch(0))
  assert np.isfinite(float(m["loss"]))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
  assert all(x.dtype in (jnp.float32, jnp.int32) for x in jax.tree.leaves(state.opt_state))


def test_metrics_of_a_step():
  state, step = _setup(toy.ToyModel(noise=0.0))  # The program of the accumulation test's.
  _, m = step(state, _batch(0))
  assert {"loss", "mse", "pred_mean", "grad_norm", "learning_rate", "nonfinite"} <= set(m)
  assert float(m["learning_rate"]) == pytest.approx(0.05)
  assert float(m["loss"]) == pytest.approx(float(m["mse"]))
  assert float(m["grad_norm"]) > 0
