"""Tests for vidistill/models/dual_encoder.py: text tower vs NumPy, init identities, sharding."""
import math

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import numpy_transformer as ref
from vidistill.models import dual_encoder as de
from vidistill.models import vit
from vidistill.parallel import mesh as mesh_lib
from vidistill.parallel import partitioning as part

B, T, L, VOCAB = 4, 3, 8, 50


def _text_tower(**kw):
  return de.TextTransformer(variant="mu", vocab_size=VOCAB, max_len=L, head_dim=16, **kw)


def _tokens(seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(1, VOCAB, (B, L)).astype(np.int32)
  lengths = np.array([L, 5, 3, 1])
  tokens[np.arange(L)[None] >= lengths[:, None]] = 0  # right padding with pad_id 0
  return tokens, lengths


def _np_text(params, tokens, lengths, pool):
  p = ref.f64(params)
  x = p["Embed_0"]["embedding"][tokens] + p["pos_embedding"][:, :tokens.shape[1]]
  mask = tokens != 0
  x = ref.encoder(x, p["Encoder_0"], depth=2, mask=mask)
  if pool == "last":
    x = x[np.arange(len(x)), lengths - 1]
  else:
    x = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
  return x @ p["head"]["kernel"] + p["head"]["bias"]


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_text_tower_matches_numpy_and_ignores_padding(pool):
  tower = _text_tower(pool_type=pool)
  tokens, lengths = _tokens()
  params = ref.random_params(tower, tokens)
  out, aux = jax.jit(tower.apply)({"params": params}, tokens)
  np.testing.assert_allclose(np.asarray(out, np.float64), _np_text(params, tokens, lengths, pool),
                             rtol=1e-4, atol=1e-5)
  # Whatever sits in padded positions (here: other token ids, not attended) changes nothing.
  noisy = np.where(aux["mask"], tokens, 0)
  noisy_out, _ = jax.jit(tower.apply)({"params": params}, noisy)
  np.testing.assert_allclose(noisy_out, out, rtol=1e-6, atol=1e-6)


def test_text_tower_without_mask_pools_the_final_position():
  tower = _text_tower(mask_padding=False, pool_type="last")
  tokens, _ = _tokens()
  params = ref.random_params(tower, tokens)
  out, aux = jax.jit(tower.apply)({"params": params}, tokens)
  p = ref.f64(params)
  x = p["Embed_0"]["embedding"][tokens] + p["pos_embedding"]
  x = ref.encoder(x, p["Encoder_0"], depth=2)[:, -1]
  np.testing.assert_allclose(out, x @ p["head"]["kernel"] + p["head"]["bias"], rtol=1e-4, atol=1e-5)


def _model(temporal_type="transformer", **kw):
  return de.DualEncoder(img=vit.ViT(variant="mu/8", head_dim=16), txt=_text_tower(),
                        temporal_type=temporal_type, temporal_heads=2, max_frames=8, **kw)


def _video(seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (B, T, 16, 16, 3)).astype(np.float32)


def test_init_temperature_and_bias():
  model = _model()
  v = jax.jit(lambda k: model.init(k, method=lambda m: (m.t, m.b)))(jax.random.key(0))
  np.testing.assert_allclose(v["params"]["t"].value, [math.log(10.0)], rtol=1e-6)
  np.testing.assert_allclose(v["params"]["b"].value, [-10.0])


def test_temporal_transformer_is_the_frame_mean_at_init():
  frames = np.random.default_rng(0).standard_normal((B, T, 16)).astype(np.float32)
  temporal = de.TemporalTransformer(depth=2, num_heads=2, max_frames=8)
  variables = part.unbox(jax.jit(temporal.init)(jax.random.key(0), frames))
  out = jax.jit(temporal.apply)(variables, frames)
  np.testing.assert_allclose(out, frames.mean(1), rtol=1e-5, atol=1e-6)
  # ... and is not a plain mean once trained (weights away from zero).
  moved = ref.perturb(jax.device_get(variables["params"]), seed=1)
  assert not np.allclose(jax.jit(temporal.apply)({"params": moved}, frames), frames.mean(1),
                         atol=1e-3)


def test_forward_embeddings_and_separate_encoders():
  model, video, (tokens, _) = _model("mean"), _video(), _tokens()
  params = ref.random_params(model, video, tokens)
  (zv, zt), aux = jax.jit(model.apply)({"params": params}, video, tokens)
  np.testing.assert_allclose(aux["temperature"], np.exp(params["t"][0]), rtol=1e-6)
  frames, _ = jax.jit(model.img.apply)({"params": params["img"]}, video.reshape(B * T, 16, 16, 3))
  mean = np.asarray(frames, np.float64).reshape(B, T, -1).mean(1)
  np.testing.assert_allclose(zv, mean / np.linalg.norm(mean, axis=1, keepdims=True),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(zt, axis=1), 1.0, rtol=1e-5)
  zv2, _ = jax.jit(lambda v, x: model.apply(v, x, method=model.encode_video))(
      {"params": params}, video)
  zt2, _ = jax.jit(lambda v, x: model.apply(v, x, method=model.encode_text))(
      {"params": params}, tokens)
  np.testing.assert_allclose(zv2, zv, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(zt2, zt, rtol=1e-6, atol=1e-6)


def test_clip_style_config_has_no_bias():
  model = _model("mean", temperature_init=de.CLIP_TEMPERATURE_INIT, bias_init=None)
  shapes = jax.eval_shape(model.init, jax.random.key(0), _video(), _tokens()[0])
  assert "b" not in shapes["params"] and "temporal" not in shapes["params"]
  assert math.isclose(math.exp(de.CLIP_TEMPERATURE_INIT), 1 / 0.07)


def test_mismatched_embedding_widths_are_reported():
  model = de.DualEncoder(img=vit.ViT(variant="mu/8", head_dim=8), txt=_text_tower())
  with pytest.raises(ValueError, match="width 8 but text embeddings 16"):
    jax.eval_shape(model.init, jax.random.key(0), _video(), _tokens()[0])


def test_sharded_forward_equals_single_device_and_params_are_sharded():
  mesh = mesh_lib.make_mesh({"data": 2, "fsdp": 2, "model": 2})
  model, video, (tokens, _) = _model(), _video(), _tokens()
  abstract = jax.eval_shape(model.init, jax.random.key(0), video, tokens)
  shardings = part.param_shardings(abstract, mesh)
  host = {"params": ref.random_params(model, video, tokens)}
  variables = part.shard_params(host, shardings)
  p = variables["params"]
  assert p["txt"]["Embed_0"]["embedding"].sharding.spec == P("model", "fsdp")
  assert p["img"]["head"]["kernel"].sharding.spec == P("fsdp", "model")
  mlp = p["temporal"]["Encoder_0"]["encoderblock_0"]["MlpBlock_0"]["Dense_0"]["kernel"]
  assert mlp.sharding.spec == P("fsdp", "model")
  assert mlp.addressable_shards[0].data.shape == (8, 32)

  want, _ = jax.jit(model.apply)(host, video, tokens)
  data = part.data_sharding(mesh)
  with part.axis_rules(mesh):
    got, _ = jax.jit(model.apply, in_shardings=(shardings, data, data))(variables, video, tokens)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
