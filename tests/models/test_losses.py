"""Tests for vidistill/models/losses.py against a float64 NumPy log-softmax reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.models import losses


def _reference(logits, targets, weights, z_loss):
  """Naive float64: per-token -log softmax[target] + z * logsumexp^2, weighted mean."""
  logits = np.asarray(logits, np.float64)
  m = logits.max(-1, keepdims=True)
  lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
  b, l = targets.shape
  ce = np.zeros((b, l))
  for i in range(b):
    for j in range(l):
      ce[i, j] = lse[i, j] - logits[i, j, targets[i, j]]
  total = (weights * (ce + z_loss * lse ** 2)).sum() / weights.sum()
  return total, (weights * ce).sum() / weights.sum()


@pytest.mark.parametrize("z_loss", [0.0, 1e-4, 0.1])
def test_cross_entropy_matches_reference_and_excludes_padding(z_loss):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 11)).astype(np.float32) * 3
  targets = rng.integers(1, 11, size=(3, 5)).astype(np.int32)
  targets[0, 3:] = 0
  targets[2, 1:] = 0
  weights = (targets != 0).astype(np.float64)
  loss, aux = losses.cross_entropy_loss(logits, targets, z_loss=z_loss)
  want, want_ce = _reference(logits, targets, weights, z_loss)
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(aux["cross_entropy"], want_ce, rtol=1e-5)
  assert aux["num_tokens"] == weights.sum()
  # Changing logits at padded positions changes nothing.
  logits2 = logits.copy()
  logits2[targets == 0] += rng.normal(size=logits2[targets == 0].shape).astype(np.float32) * 10
  np.testing.assert_allclose(losses.cross_entropy_loss(logits2, targets, z_loss=z_loss)[0], loss,
                             rtol=1e-6)


def test_explicit_weights_and_accuracy():
  logits = np.array([[[0.0, 5.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 1.0]]], np.float32)
  targets = np.array([[1, 2, 2]], np.int32)
  weights = np.array([[1.0, 0.5, 2.0]])
  loss, aux = losses.cross_entropy_loss(logits, targets, weights=weights)
  np.testing.assert_allclose(loss, _reference(logits, targets, weights, 0.0)[0], rtol=1e-6)
  np.testing.assert_allclose(aux["accuracy"], (1.0 + 0.0 + 2.0) / 3.5, rtol=1e-6)


def test_bfloat16_logits_are_upcast():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 4, 300)).astype(np.float32) * 5
  targets = rng.integers(1, 300, size=(2, 4)).astype(np.int32)
  loss_bf16, _ = losses.cross_entropy_loss(jnp.asarray(logits, jnp.bfloat16), targets)
  assert loss_bf16.dtype == jnp.float32
  rounded = np.asarray(jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32))
  np.testing.assert_allclose(loss_bf16, _reference(rounded, targets, np.ones((2, 4)), 0.0)[0],
                             rtol=1e-5)


def test_all_padding_gives_zero_not_nan_and_gradients():
  logits = jnp.ones((1, 3, 4))
  loss, _ = losses.cross_entropy_loss(logits, jnp.zeros((1, 3), jnp.int32))
  assert float(loss) == 0.0
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 3, 6)).astype(np.float32)
  targets = np.array([[1, 2, 0], [3, 0, 0]], np.int32)
  grad = jax.grad(lambda x: losses.cross_entropy_loss(x, targets, z_loss=1e-2)[0])(logits)
  # d/dlogits of CE is softmax - onehot, divided by the token count; zero at padding.
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  lse = np.log(np.exp(logits).sum(-1))
  want = (p - np.eye(6)[targets] + 1e-2 * 2 * lse[..., None] * p) * (targets != 0)[..., None] / 3
  np.testing.assert_allclose(grad, want, atol=1e-6)


def test_token_log_likelihood():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(2, 2, 3, 5)).astype(np.float32)
  targets = rng.integers(0, 5, size=(2, 2, 3))
  got = losses.token_log_likelihood(logits, targets)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  np.testing.assert_allclose(got, np.take_along_axis(logp, targets[..., None], -1)[..., 0],
                             rtol=1e-5, atol=1e-6)
