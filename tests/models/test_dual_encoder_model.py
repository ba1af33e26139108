"""DualEncoderModel: the trainer-facing loss equals a plain numpy contrastive loss, with or
without a device mesh, and the evaluator-facing embedders equal the module's encoders."""
import jax
import numpy as np
import pytest

from vidistill.models import dual_encoder_model as dem
from vidistill.parallel import mesh as mesh_lib

CONFIG = {"embed_dim": 16, "vit": {"variant": "mu/8", "pool_type": "gap", "depth": 1},
          "text": {"variant": "mu", "depth": 1, "max_len": 8}, "temperature_init": 1.0,
          "bias_init": -2.0}


def _batch(n=8, seed=0):
  rng = np.random.default_rng(seed)
  return {"video": rng.integers(0, 256, (n, 2, 16, 16, 3), dtype=np.uint8),
          "text_tokens": rng.integers(3, 50, (n, 8)).astype(np.int32)}


def _numpy_loss(zv, zt, t, b, kind):
  logits = zv.astype(np.float64) @ zt.astype(np.float64).T * t
  n = len(zv)
  if kind == "sigmoid":
    labels = 2 * np.eye(n) - 1
    return np.sum(np.logaddexp(0, -labels * (logits + b))) / n
  lse_rows = np.log(np.exp(logits).sum(1))
  lse_cols = np.log(np.exp(logits).sum(0))
  return (np.sum(lse_rows - np.diag(logits)) + np.sum(lse_cols - np.diag(logits))) / (2 * n)


@pytest.mark.parametrize("kind", [pytest.param("sigmoid", marks=pytest.mark.slow), "softmax"])
def test_loss_matches_numpy_and_mesh_path(kind):
  module = dem.build_module({**CONFIG, "loss": kind}, vocab_size=64)
  plain = dem.DualEncoderModel(module, loss=kind)
  batch = _batch()
  params = plain.init(jax.random.key(0), batch)["params"]
  params = jax.tree.map(lambda x: getattr(x, "value", x), params,
                        is_leaf=lambda x: hasattr(x, "value"))
  loss, metrics = plain.loss_fn(params, batch, jax.random.key(1), train=False)
  (zv, zt), aux = module.apply({"params": params}, dem.vit.normalize_uint8(batch["video"]),
                               batch["text_tokens"])
  bias = None if kind == "softmax" else float(aux["bias"])
  expected = _numpy_loss(np.asarray(zv), np.asarray(zt), float(aux["temperature"]), bias, kind)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert ("bias" in metrics) == (kind == "sigmoid")
  sharded = dem.DualEncoderModel(module, loss=kind, mesh=mesh_lib.make_mesh({"data": 4, "fsdp": 2,
                                                                             "model": 1}))
  loss_mesh, _ = jax.jit(lambda p, b: sharded.loss_fn(p, b, jax.random.key(1), train=False))(
      params, batch)
  np.testing.assert_allclose(float(loss_mesh), float(loss), rtol=1e-5)


def test_embedders_equal_module_encoders():
  class Vocab:
    eos_id = 1
    def encode(self, text):
      return [3 + (ord(c) % 40) for c in text]

  module = dem.build_module(CONFIG, vocab_size=64)
  model = dem.DualEncoderModel(module, text_length=8, vocab=Vocab())
  batch = _batch(4)
  variables = model.init(jax.random.key(0), batch)
  params = jax.tree.map(lambda x: getattr(x, "value", x), variables["params"],
                        is_leaf=lambda x: hasattr(x, "value"))
  bound = model.with_params(params)
  zv = bound.embed_videos(batch["video"])
  (ref_v, _), _ = module.apply({"params": params}, dem.vit.normalize_uint8(batch["video"]), None)
  np.testing.assert_allclose(zv, np.asarray(ref_v), rtol=1e-5, atol=1e-6)
  texts = ["abc", "a much longer caption than fits"]
  tokens = dem.tokenize(texts, Vocab(), 8)
  assert tokens[0].tolist() == [3 + ord(c) % 40 for c in "abc"] + [1, 0, 0, 0, 0]
  assert tokens[1, -1] == 1
  (_, ref_t), _ = module.apply({"params": params}, None, tokens)
  np.testing.assert_allclose(bound.embed_texts(texts), np.asarray(ref_t), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="with_params"):
    model.embed_videos(batch["video"])
