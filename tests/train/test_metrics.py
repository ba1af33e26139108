"""Throughput, ETA and MFU arithmetic; model FLOPs against XLA's count; clu writers."""
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import toy
from vidistill.train import metrics
from vidistill.train import model_api


class FakeClock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_progress_rates_mfu_eta_and_excluded_time():
  clock = FakeClock()
  p = metrics.StepMeter(total_steps=100, start_step=10, examples_per_step=32,
                       flops_per_step=2e12, peak_flops=8e12, clock=clock)
  clock.now += 4.0
  p.add_tokens(1000)
  with p.excluded():
    clock.now += 6.0  # An eval: not training time.
  m = p.measure(30)
  assert m["steps_per_sec"] == pytest.approx(5.0)
  assert m["examples_per_sec"] == pytest.approx(160.0)
  assert m["tokens_per_sec"] == pytest.approx(250.0)
  assert m["mfu"] == pytest.approx(2e12 * 5.0 / 8e12)
  assert m["eta_seconds"] == pytest.approx(70 / 5.0)
  clock.now += 10.0
  m = p.measure(40)
  assert m["steps_per_sec"] == pytest.approx(1.0) and m["tokens_per_sec"] == 0.0
  assert m["eta_seconds"] == pytest.approx(60 / (30 / 14.0))
  line = p.line(40, m, loss=1.25)
  assert line.startswith("step 40/100 (40.0%) loss 1.25 |") and "ETA 28s" in line


WIDE = dict(dim=128, hidden=256, out=128)  # Wide enough that matmuls dominate the FLOPs.


def _forward(params, x):
  return toy.MLP(hidden=WIDE["hidden"], out=WIDE["out"]).apply({"params": params}, x)


def test_model_flops_match_xla_count_on_one_and_eight_devices():
  model = toy.ToyModel(noise=0.0, **WIDE)
  batch = {"x": np.zeros((64, WIDE["dim"]), np.float32)}
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), batch)["params"]
  params = jax.tree.map(lambda b: b.value if hasattr(b, "value") else b, params,
                        is_leaf=lambda b: hasattr(b, "names"))
  want = model_api.forward_flops_per_example(model, batch) * 64
  x = jax.ShapeDtypeStruct((64, WIDE["dim"]), jnp.float32)
  one = metrics.compiled_flops(jax.jit(_forward).lower(params, x).compile())
  # gelu and bias adds are the only FLOPs the model's count leaves out (lower order).
  assert want <= one <= 1.05 * want, (want, one)
  mesh = jax.make_mesh((8,), ("data",))
  sharded_x = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, P("data")))
  rep = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                    sharding=NamedSharding(mesh, P())), params)
  eight = metrics.compiled_flops(jax.jit(_forward).lower(rep, sharded_x).compile())
  assert eight == pytest.approx(one, rel=0.05)  # Summed over the 8 devices' shares.
  # A training step (value and grad) costs about 3 forwards.
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(_forward(p, x) ** 2)))
  train = metrics.compiled_flops(grad.lower(params, x).compile())
  ratio = train / want
  assert 2.5 <= ratio <= 4.0, ratio
  assert model_api.TRAIN_FLOPS_PER_FORWARD_FLOP == 3.0


def test_measure_peak_flops_is_a_positive_rate():
  assert metrics.measure_peak_flops(size=64, repeats=2) > 1e6


def test_count_tokens_ignores_padding():
  batch = {"targets": np.array([[5, 6, 0, 0], [1, 0, 0, 0]]), "inputs": np.array([[3, 0]]),
           "video": np.ones((2, 3))}
  assert metrics.count_tokens(batch) == 4


def test_tensorboard_writer_writes_event_files(tmp_path):
  writer = metrics.make_writer(str(tmp_path), tensorboard=True)
  writer.write_scalars(3, {"loss": 1.5, "mfu": 0.25})
  writer.flush()
  writer.close()
  assert glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
  assert isinstance(metrics.make_writer(str(tmp_path), tensorboard=False), metrics.LogWriter)
