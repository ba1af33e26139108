"""Token-level losses and log-likelihoods for the encoder-decoder (teacher forcing, scoring).

All math in float32 whatever the logits' dtype: a bfloat16 logsumexp over a 32k vocabulary loses
most of its mantissa.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def token_log_likelihood(logits: Array, targets: Array) -> Array:
  """`log p(target)` per position: logits `[..., L, V]`, targets `[..., L]` int -> `[..., L]` f32."""
  logits = jnp.asarray(logits, jnp.float32)
  picked = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return picked - jax.nn.logsumexp(logits, axis=-1)


def cross_entropy_loss(logits: Array, targets: Array, *, weights: Array | None = None,
                       z_loss: float = 0.0, pad_id: int = 0) -> tuple[Array, dict[str, Array]]:
  """Mean token cross-entropy over target positions, plus optional z-loss.

  Args:
    logits: `[B, L, V]` any float dtype.
    targets: `[B, L]` int32; positions equal to `pad_id` are excluded.
    weights: optional `[B, L]` float; replaces the pad mask when given.
    z_loss: coefficient of `logsumexp(logits)^2` (PaLM / t5x), which keeps the softmax normaliser
      near 1 so that bfloat16 logits stay in range; 0 disables it.
  Returns:
    `(loss, aux)`: loss = sum_w(ce + z_loss * lse^2) / sum_w, a float32 scalar; aux has
    `cross_entropy`, `z_loss` (weighted means), `num_tokens` and `accuracy` (argmax == target).
  """
  logits = jnp.asarray(logits, jnp.float32)
  if weights is None:
    weights = (targets != pad_id).astype(jnp.float32)
  weights = jnp.asarray(weights, jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  ce = lse - picked
  z = z_loss * jnp.square(lse)
  num_tokens = jnp.sum(weights)
  denom = jnp.maximum(num_tokens, 1.0)  # an all-padding batch gives 0, not NaN
  cross_entropy = jnp.sum(weights * ce) / denom
  z_term = jnp.sum(weights * z) / denom
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  aux = {"cross_entropy": cross_entropy, "z_loss": z_term, "num_tokens": num_tokens,
         "accuracy": jnp.sum(weights * correct) / denom}
  return cross_entropy + z_term, aux
