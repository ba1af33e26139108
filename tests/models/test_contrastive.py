"""Tests for vidistill/models/contrastive.py: float64 NumPy values, naive == chunked on 8 devices."""
import functools

import jax
import numpy as np
import pytest

from vidistill.models import contrastive as c
from vidistill.parallel import mesh as mesh_lib

B, D = 16, 8


def _embeddings(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((B, D))
  y = x + 0.7 * rng.standard_normal((B, D))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  y /= np.linalg.norm(y, axis=1, keepdims=True)
  return x.astype(np.float32), y.astype(np.float32)


def _np_sigmoid(x, y, t, b):
  x, y = np.float64(x), np.float64(y)
  logits = t * x @ y.T + b
  labels = 2 * np.eye(len(x)) - 1
  return -np.sum(np.log(1 / (1 + np.exp(-labels * logits)))) / len(x)


def _np_softmax(x, y, t):
  x, y = np.float64(x), np.float64(y)
  logits = t * x @ y.T

  def xent(l):
    l = l - l.max(1, keepdims=True)
    return -np.mean(np.diag(l) - np.log(np.exp(l).sum(1)))
  return 0.5 * (xent(logits) + xent(logits.T))


T_, BIAS = 10.0, -3.0
CASES = {
    "sigmoid": (c.sigmoid_loss_naive, c.sigmoid_loss_chunked, (T_, BIAS),
                lambda x, y: _np_sigmoid(x, y, T_, BIAS)),
    "softmax": (c.softmax_loss_naive, c.softmax_loss_chunked, (T_,),
                lambda x, y: _np_softmax(x, y, T_)),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_single_device_values_match_numpy(kind):
  naive, chunked, scalars, ref = CASES[kind]
  x, y = _embeddings()
  want = ref(x, y)
  np.testing.assert_allclose(float(naive(x, y, *scalars)), want, rtol=1e-5)
  np.testing.assert_allclose(float(chunked(x, y, *scalars)), want, rtol=1e-5)


def _value_and_grads(fn, x, y, scalars):
  argnums = tuple(range(2 + len(scalars)))
  return jax.jit(jax.value_and_grad(fn, argnums=argnums))(x, y, *map(np.float32, scalars))


@pytest.mark.parametrize("mesh_shape", [{"data": 8}, {"data": 2, "fsdp": 2, "model": 2}])
@pytest.mark.parametrize("kind", sorted(CASES))
def test_sharded_naive_and_chunked_equal_single_device(kind, mesh_shape):
  naive, chunked, scalars, ref = CASES[kind]
  mesh = mesh_lib.make_mesh(mesh_shape)
  x, y = _embeddings(1)
  want_v, want_g = _value_and_grads(naive, x, y, scalars)
  np.testing.assert_allclose(float(want_v), ref(x, y), rtol=1e-5)
  for fn in (naive, chunked):
    got_v, got_g = _value_and_grads(c.sharded(fn, mesh), x, y, scalars)
    np.testing.assert_allclose(float(got_v), float(want_v), rtol=1e-5)
    for g, w in zip(got_g, want_g):  # d/dzimg, d/dztxt, d/dtemperature (, d/dbias)
      np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def test_chunked_never_builds_a_local_by_global_block():
  """The [b, B] = [2, 16] logit slab appears in the naive program only (per-device HLO)."""
  mesh = mesh_lib.make_mesh({"data": 8})
  x, y = _embeddings()

  def hlo(fn):
    f = jax.grad(c.sharded(fn, mesh), argnums=(0, 1))
    return jax.jit(f).lower(x, y, np.float32(T_), np.float32(BIAS)).compile().as_text()

  assert "f32[2,16]" in hlo(c.sigmoid_loss_naive)
  chunked = hlo(c.sigmoid_loss_chunked)
  assert "f32[2,16]" not in chunked and "f32[16,2]" not in chunked
  assert "f32[2,2]" in chunked


def test_chunked_softmax_is_stable_at_large_temperature():
  x, y = _embeddings(2)
  t = np.float32(300.0)  # exp(300) overflows float32: only a running logsumexp survives this
  want = _np_softmax(x, y, 300.0)
  np.testing.assert_allclose(float(c.softmax_loss_chunked(x, y, t)), want, rtol=1e-4)
  mesh = mesh_lib.make_mesh({"data": 8})
  got = jax.jit(c.sharded(c.softmax_loss_chunked, mesh))(x, y, t)
  np.testing.assert_allclose(float(got), want, rtol=1e-4)
  g = jax.jit(jax.grad(c.sharded(c.softmax_loss_chunked, mesh)))(x, y, t)
  assert np.all(np.isfinite(g))
