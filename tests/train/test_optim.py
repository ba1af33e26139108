"""The optimizer from config: freezing holds no state, decay masks, clipping, against numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import param_paths
from vidistill.train import optim
from vidistill.train import state as state_lib

rng = np.random.default_rng(0)
PARAMS = {"img": {"Dense_0": {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
                              "bias": jnp.asarray(rng.normal(size=3), jnp.float32)}},
          "llm": {"kernel": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
                  "scale": jnp.asarray(rng.normal(size=2), jnp.float32)}}
GRADS = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), PARAMS)
LR = 0.1


def _constant(step):
  del step
  return LR


def test_frozen_params_have_no_state_and_zero_updates():
  tx, mask = optim.make_optimizer({"name": "adamw", "grad_clip_norm": 1.0}, _constant, PARAMS,
                                  frozen=["img/.*"])
  assert mask["img"]["Dense_0"]["kernel"] and not mask["llm"]["kernel"]
  opt_state = tx.init(PARAMS)
  frozen_shapes = {(4, 3), (3,)}
  shapes = [tuple(x.shape) for x in jax.tree.leaves(opt_state)]
  assert not frozen_shapes & set(shapes), shapes  # No moment of a frozen param exists.
  trainable = state_lib.count_params(PARAMS, jax.tree.map(lambda f: not f, mask))
  assert sum(int(np.prod(s)) for s in shapes if s) == 2 * trainable  # mu + nu only.
  updates, _ = tx.update(GRADS, opt_state, PARAMS)
  assert not np.any(np.asarray(updates["img"]["Dense_0"]["kernel"]))
  assert np.any(np.asarray(updates["llm"]["kernel"]))


def _adamw_reference(params, grads, clip, wd, b1=0.9, b2=0.999, eps=1e-8):
  """One AdamW step in float64 numpy: clip over all grads, decay kernels only."""
  flat_p = param_paths.flatten(params)
  flat_g = {k: np.asarray(v, np.float64) for k, v in param_paths.flatten(grads).items()}
  norm = np.sqrt(sum(np.sum(g ** 2) for g in flat_g.values()))
  scale = min(1.0, clip / norm)
  out = {}
  for k, p in flat_p.items():
    g = flat_g[k] * scale
    m_hat = (1 - b1) * g / (1 - b1)
    v_hat = (1 - b2) * g ** 2 / (1 - b2)
    u = m_hat / (np.sqrt(v_hat) + eps)
    if k.endswith("kernel"):
      u = u + wd * np.asarray(p, np.float64)
    out[k] = -LR * u
  return out


def test_adamw_step_matches_numpy():
  tx, _ = optim.make_optimizer({"name": "adamw", "grad_clip_norm": 0.5, "weight_decay": 0.3},
                               _constant, PARAMS)
  updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
  want = _adamw_reference(PARAMS, GRADS, clip=0.5, wd=0.3)
  for k, u in param_paths.flatten(updates).items():
    np.testing.assert_allclose(np.asarray(u), want[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_clip_uses_trainable_grads_only():
  # The frozen gradient is huge; it must not shrink the trainable update through the clip.
  grads = jax.tree.map(lambda g: g, GRADS)
  grads["img"]["Dense_0"]["kernel"] = grads["img"]["Dense_0"]["kernel"] * 1e6
  tx, _ = optim.make_optimizer({"name": "sgd", "b1": 0.0, "grad_clip_norm": 1e3}, _constant,
                               PARAMS, frozen=["img/.*"])
  updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
  np.testing.assert_allclose(np.asarray(updates["llm"]["kernel"]),
                             -LR * np.asarray(GRADS["llm"]["kernel"]), rtol=1e-6)


def test_sgd_momentum_and_l2_two_steps():
  tx, _ = optim.make_optimizer({"name": "sgd", "b1": 0.5, "weight_decay": 0.1,
                                "grad_clip_norm": 0.0, "wd_mask": [".*/scale"]}, _constant, PARAMS)
  state = tx.init(PARAMS)
  params = PARAMS
  trace = {k: 0.0 for k in param_paths.flatten(PARAMS)}
  ref = {k: np.asarray(v, np.float64) for k, v in param_paths.flatten(PARAMS).items()}
  for _ in range(2):
    updates, state = tx.update(GRADS, state, params)
    params = optax.apply_updates(params, updates)
    for k, g in param_paths.flatten(GRADS).items():
      g = np.asarray(g, np.float64) + (0.1 * ref[k] if k.endswith("scale") else 0.0)
      trace[k] = g + 0.5 * trace[k]
      ref[k] = ref[k] - LR * trace[k]
  for k, p in param_paths.flatten(params).items():
    np.testing.assert_allclose(np.asarray(p), ref[k], rtol=1e-5, err_msg=k)


def test_adafactor_runs_with_freezing():
  big = {"w": jnp.ones((256, 130)), "frozen": {"w": jnp.ones((130, 3))}}
  tx, _ = optim.make_optimizer({"name": "adafactor", "b1": 0.0, "weight_decay": 1e-4}, _constant,
                               big, frozen=["frozen/.*"])
  grads = jax.tree.map(lambda p: jnp.full(p.shape, 0.01), big)
  updates, _ = tx.update(grads, tx.init(big), big)
  assert np.all(np.isfinite(np.asarray(updates["w"]))) and np.any(np.asarray(updates["w"]))
  assert not np.any(np.asarray(updates["frozen"]["w"]))


@pytest.mark.parametrize("cfg,frozen,match", [
    ({"name": "lamb"}, (), "optim.name='lamb'"),
    ({"name": "adamw", "grad_clip_norm": -1.0}, (), "grad_clip_norm"),
    ({"name": "adamw"}, ("vision/.*",), "'vision/.*' matches no parameter"),
])
def test_config_errors_name_the_value(cfg, frozen, match):
  with pytest.raises(ConfigError, match=match):
    optim.make_optimizer(cfg, _constant, PARAMS, frozen=frozen)
