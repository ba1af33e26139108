"""A toy model and data source for the trainer tests (not a test module itself).

The model is a two-layer MLP regression with logically partitioned params, dropout-like noise drawn
from the step rng (so rng handling matters), and an exact FLOP count; the source is a random-access
sequence whose example i is a pure function of i (optionally slow, optionally NaN at one index).
"""
from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

DIM, HIDDEN, OUT = 8, 16, 4


def _dense(features, names, name):
  return nn.Dense(features, name=name,
                  kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), names),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, names[1:]))


class MLP(nn.Module):
  hidden: int = HIDDEN
  out: int = OUT

  @nn.compact
  def __call__(self, x):
    h = _dense(self.hidden, ("embed", "mlp"), "encoder")(x)
    h = nn.gelu(h)
    return _dense(self.out, ("mlp", "embed"), "head")(h)


class ToyModel:
  """Implements vidistill.train.model_api.TrainableModel."""

  def __init__(self, noise: float = 0.01, dim: int = DIM, hidden: int = HIDDEN, out: int = OUT):
    self.net = MLP(hidden=hidden, out=out)
    self.noise, self.dim, self.hidden, self.out = noise, dim, hidden, out

  def init(self, rng, batch):
    return self.net.init(rng, jnp.asarray(batch["x"], jnp.float32))

  def loss_fn(self, params, batch, rng, *, train=True):
    x = batch["x"].astype(jnp.float32)
    if train and self.noise:
      x = x + self.noise * jax.random.normal(rng, x.shape)
    pred = self.net.apply({"params": params}, x).astype(jnp.float32)
    loss = jnp.mean((pred - batch["y"]) ** 2)
    return loss, {"mse": loss, "pred_mean": jnp.mean(pred)}

  def flops_per_example(self, batch):
    del batch
    return 2.0 * (self.dim * self.hidden + self.hidden * self.out)  # The matmuls; the rest is
    # lower order (bias, gelu).


class ToySource:
  """Example i: x ~ N(0, 1) [DIM], y = tanh(x W) [OUT], "targets" with i % 5 + 1 nonzero tokens."""

  def __init__(self, n: int = 4096, nan_index: int | None = None, delay: float = 0.0):
    self.n, self.nan_index, self.delay = n, nan_index, delay
    self.w = np.random.default_rng(1234).normal(size=(DIM, OUT)).astype(np.float32)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    if self.delay:
      time.sleep(self.delay)
    x = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    if i == self.nan_index:
      x[0] = np.nan
    targets = np.arange(1, i % 5 + 2, dtype=np.int32)
    return {"x": x, "y": np.tanh(x @ self.w).astype(np.float32), "targets": targets,
            "id": f"ex{i}"}


def toy_config(**overrides):
  from vidistill.train import config as config_lib
  c = config_lib.base_config()
  c.total_steps = 12
  c.batch_size = 16
  c.optim.lr = 1e-2
  c.schedule.warmup_steps = 2
  c.log_every = 4
  c.checkpoint_every = 4
  c.tensorboard = False
  c.peak_flops_per_device = 1e9
  c.prefetch = 0
  c.update_from_flattened_dict(overrides)
  return c


def run_config(steps: int = 24, checkpoint_every: int = 3):
  """The config of tests/train/toy_run.py (also used in-process for its reference runs)."""
  return toy_config(total_steps=steps, checkpoint_every=checkpoint_every, log_every=1,
                    keep_checkpoints=2)


def subprocess_env() -> dict:
  """This environment plus this process's compilation cache settings, for toy_run.py."""
  import os
  import jax
  env = dict(os.environ)
  if jax.config.jax_compilation_cache_dir:
    env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  return env


def reference_params(steps: int, workdir) -> dict:
  """toy_run.py's training, uninterrupted and in this process: {"a/b/kernel": np.ndarray}."""
  import jax
  from vidistill.models import param_paths
  from vidistill.train import trainer
  result = trainer.train(run_config(steps), str(workdir), ToyModel(),
                         toy_data(ToySource(), batch_size=16))
  return {k: np.asarray(v) for k, v in
          param_paths.flatten(jax.device_get(result.state.params)).items()}


def toy_data(source=None, *, shuffle=True, seed=0, batch_size=None):
  import functools
  from vidistill.train import input as input_lib
  return functools.partial(input_lib.batches, source if source is not None else ToySource(),
                           batch_size=batch_size, seq_lengths={"targets": 8}, seed=seed,
                           shuffle=shuffle)
