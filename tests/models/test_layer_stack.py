"""Scanned layer stacks give the unrolled stacks' outputs, gradients and cached decoding."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.models import layer_stack, t5, vit


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("policy", ["none", "full", "dots"])
def test_vit_encoder_scanned_equals_unrolled(policy):
  x = jax.random.normal(jax.random.key(0), (2, 5, 32))
  mask = jnp.array([[1, 1, 1, 0, 0], [1] * 5], bool)
  unrolled = vit.Encoder(3, 64, 2, remat_policy=policy)
  scanned = vit.Encoder(3, 64, 2, remat_policy=policy, scan=True)
  params = nn.unbox(unrolled.init(jax.random.key(1), x, mask))["params"]
  stacked = layer_stack.stack_layers(params, "encoderblock")
  abstract = jax.eval_shape(scanned.init, jax.random.key(1), x, mask)["params"]
  boxed = abstract["encoderblock"]["MlpBlock_0"]["Dense_0"]["kernel"]
  assert boxed.names == ("layers", "embed", "mlp") and boxed.value.shape == (3, 32, 64)
  assert jax.tree.structure(nn.unbox(abstract)) == jax.tree.structure(stacked)

  def loss(model, p):
    y, aux = model.apply({"params": p}, x, mask)
    return jnp.sum(y ** 2) + jnp.sum(aux["pre_ln"]), y

  # Jitted: one compile instead of one per op of the backward pass.
  (_, y_u), g_u = jax.jit(jax.value_and_grad(lambda p: loss(unrolled, p), has_aux=True))(params)
  (_, y_s), g_s = jax.jit(jax.value_and_grad(lambda p: loss(scanned, p), has_aux=True))(stacked)
  assert _max_diff(y_u, y_s) < 1e-5
  assert _max_diff(layer_stack.stack_layers(g_u, "encoderblock"), g_s) < 1e-4


def test_vit_scanned_runs_dropout_per_layer():
  """Training mode works scanned (dropout rngs split over the layers); outputs differ from eval."""
  model = vit.ViT(variant="mu/8", scan=True, dropout=0.5, remat_policy="full")
  image = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), minval=-1, maxval=1)
  params = nn.unbox(model.init(jax.random.key(1), image))["params"]
  apply = jax.jit(model.apply, static_argnames="train")
  train = apply({"params": params}, image, train=True, rngs={"dropout": jax.random.key(2)})
  evals = apply({"params": params}, image)
  assert np.all(np.isfinite(train[0])) and _max_diff(train[0], evals[0]) > 1e-3


def test_t5_scanned_equals_unrolled_forward_grad_and_decoding():
  cfg = dataclasses.replace(t5.decode_variant("tiny"), num_decoder_layers=3)
  enc = jax.random.randint(jax.random.key(0), (2, 7), 1, 128)
  dec = jax.random.randint(jax.random.key(1), (2, 5), 1, 128)
  unrolled = t5.T5(cfg)
  scanned = t5.T5(dataclasses.replace(cfg, scan_layers=True, remat_policy="full"))
  params = nn.unbox(unrolled.init(jax.random.key(2), enc, dec))["params"]
  stacked = layer_stack.stack_layers(params, "layers")
  assert stacked["decoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (3, 64, 32)
  assert jax.tree.structure(nn.unbox(jax.eval_shape(scanned.init, jax.random.key(2), enc, dec))
                            ["params"]) == jax.tree.structure(stacked)

  def loss(model, p):
    logits = model.apply({"params": p}, enc, dec)[0]
    return jnp.sum(jax.nn.log_softmax(logits)[..., 3]), logits

  # Jitted: op-by-op dispatch of the scanned, rematerialised backward pass is minutes on CPU.
  (_, l_u), g_u = jax.jit(jax.value_and_grad(lambda p: loss(unrolled, p), has_aux=True))(params)
  (_, l_s), g_s = jax.jit(jax.value_and_grad(lambda p: loss(scanned, p), has_aux=True))(stacked)
  assert _max_diff(l_u, l_s) < 1e-5
  assert _max_diff(layer_stack.stack_layers(g_u, "layers"), g_s) < 1e-4

  def greedy(model, p, steps=6):
    encoded, mask = model.apply({"params": p}, enc, method=t5.T5.encode)
    cache, static = model.apply({"params": p}, encoded, mask, steps, method=t5.T5.init_cache)
    step = jax.jit(lambda p, token, cache, i: model.apply(
        {"params": p}, token, cache, static, i, method=t5.T5.decode_step))
    token, out = jnp.zeros((2,), jnp.int32), []
    for i in range(steps):
      logits, cache = step(p, token, cache, jnp.int32(i))
      out.append(logits)
      token = jnp.argmax(logits, -1)
    return jnp.stack(out, 1), cache

  d_u, _ = greedy(unrolled, params)
  d_s, cache = greedy(scanned, stacked)
  assert cache["key"].shape == (2, 3, 6, 4, 8)  # batch first: beam search reorders axis 0
  assert _max_diff(d_u, d_s) < 1e-5
  # The cached steps are the teacher-forced logits of the greedy tokens.
  tokens = jnp.concatenate([jnp.zeros((2, 1), jnp.int32), jnp.argmax(d_s, -1)[:, :-1]], 1)
  assert _max_diff(jax.jit(scanned.apply)({"params": stacked}, enc, tokens)[0], d_s) < 1e-5


def test_layouts_round_trip_and_reject_mixtures():
  rng = np.random.default_rng(0)
  tree = {"enc": {f"layers_{i}": {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
                  for i in range(4)} | {"norm": np.ones(3)}}
  stacked = layer_stack.stack_layers(tree, "layers")
  assert stacked["enc"]["layers"]["w"].shape == (4, 2, 3)
  np.testing.assert_array_equal(stacked["enc"]["layers"]["b"][2], tree["enc"]["layers_2"]["b"])
  assert layer_stack.is_scanned(stacked, ["layers"]) and not layer_stack.is_scanned(tree, ["layers"])
  back = layer_stack.unstack_layers(stacked, "layers")
  assert jax.tree.structure(back) == jax.tree.structure(tree)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(tree)))
  with pytest.raises(ValueError, match="not numbered"):
    layer_stack.stack_layers({"layers_0": {"w": 1.0}, "layers_2": {"w": 1.0}}, "layers")
  with pytest.raises(ValueError, match="mixes"):
    layer_stack.stack_layers({"layers_0": {"w": np.ones(1)}, "layers": {"w": np.ones((1, 1))}},
                             "layers")


def test_unknown_remat_policy_is_named():
  with pytest.raises(ValueError, match="'some'"):
    layer_stack.remat(vit.Encoder1DBlock, "some")
