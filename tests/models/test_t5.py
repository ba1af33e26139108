"""Tests for vidistill/models/t5.py and t5_layers.py (numerics vs Hugging Face: tests/convert)."""
import dataclasses
import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import t5, t5_layers
from vidistill.parallel import partitioning
from t5_testing import random_params


# Small enough to compile fast on a shared 2-core CPU; two decoder layers exercise the per-layer
# cache.
SMALL = dict(emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, num_encoder_layers=1,
             num_decoder_layers=2, vocab_size=64)


def _abstract(cfg):
  tokens = jnp.ones((2, 4), jnp.int32)
  return jax.eval_shape(lambda: t5.T5(cfg).init(jax.random.key(0), tokens, tokens))


def _config(variant="tiny", **kw):
  return t5.decode_variant(variant, **{**SMALL, **kw})


def _init(cfg, seed=0):
  return {"params": random_params(_abstract(cfg), seed)}


@functools.lru_cache(maxsize=None)
def _apply(cfg, method=None, train=False):
  """Jitted `T5(cfg).apply(params, *args, method=, train=)`, compiled once per test session."""
  kw = {"method": method} if method is not None else {}
  if method is None or method in (t5.T5.encode, t5.T5.decode):
    kw["train"] = train
  return jax.jit(lambda params, *args, **call_kw: t5.T5(cfg).apply(params, *args, **call_kw, **kw))


def _tokens(seed=0, vocab=64):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, vocab, size=(2, 7)).astype(np.int32)
  enc[0, 5:] = 0
  enc[1, 3:] = 0
  enc[0, 4] = enc[1, 2] = 1
  dec = rng.integers(2, vocab, size=(2, 6)).astype(np.int32)
  dec[:, 0] = 0
  return enc, dec


def _n_params(cfg):
  tokens = jnp.zeros((1, 1), jnp.int32)
  shapes = jax.eval_shape(lambda: t5.T5(cfg).init(jax.random.key(0), tokens, tokens))
  return sum(int(np.prod(x.value.shape)) for x in jax.tree.leaves(
      shapes, is_leaf=lambda x: isinstance(x, flax.linen.Partitioned)))


def test_decode_variant_sizes_and_naming():
  base = t5.decode_variant("base")
  assert base == t5.decode_variant("t5_1_1_base")
  assert (base.emb_dim, base.mlp_dim, base.mlp_activations, base.logits_via_embedding) == (
      768, 2048, ("gelu", "linear"), False)
  v10 = t5.decode_variant("t5_base")
  assert (v10.mlp_dim, v10.mlp_activations, v10.logits_via_embedding, v10.logits_scaled) == (
      3072, ("relu",), True, True)
  assert t5.decode_variant("t5_xl") == t5.decode_variant("t5_3b")
  ul2 = t5.decode_variant("ul2")
  assert (ul2.emb_dim, ul2.num_heads, ul2.head_dim, ul2.mlp_dim, ul2.num_encoder_layers) == (
      4096, 16, 256, 16384, 32)
  assert t5.decode_variant("tiny", dtype="bfloat16").dtype == jnp.bfloat16
  # Published count of t5-small (Hugging Face); every size is checked against Hugging Face's
  # own model in tests/convert/test_t5.py.
  assert _n_params(t5.decode_variant("t5_small")) == 60_506_624


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="huge"), "unknown T5 size 'huge'"),
    (dict(variant="tiny", emb=3), "unknown T5Config fields \\['emb'\\]"),
    (dict(variant="tiny", mlp_activations=("tanh",)), "unknown activation 'tanh'"),
    (dict(variant="tiny", remat_policy="some"), "remat_policy='some'"),
    (dict(variant="tiny", num_heads=0), "num_heads=0 must be positive"),
])
def test_config_errors(kwargs, match):
  variant = kwargs.pop("variant")
  with pytest.raises(ConfigError, match=match):
    t5.decode_variant(variant, **kwargs)


def test_params_are_logically_partitioned_with_t5x_names():
  variables = _abstract(t5.decode_variant("tiny"))
  flat = flax.traverse_util.flatten_dict(variables["params"], sep="/")
  for name, box in flat.items():
    assert isinstance(box, flax.linen.LogicallyPartitioned), name
    assert len(box.names) == box.value.ndim, name
  assert flat["encoder/layers_0/attention/query/kernel"].names == ("embed", "heads", "kv")
  assert flat["decoder/layers_1/encoder_decoder_attention/out/kernel"].names == (
      "heads", "kv", "embed")
  assert flat["encoder/relpos_bias/rel_embedding"].value.shape == (4, 32)
  assert flat["decoder/logits_dense/kernel"].names == ("embed", "vocab")
  tied = _abstract(t5.decode_variant("tiny_v1_0"))
  tied = flax.traverse_util.flatten_dict(tied["params"], sep="/")
  assert "decoder/logits_dense/kernel" not in tied and "encoder/layers_0/mlp/wi/kernel" in tied


def _naive_bucket(n, bidirectional, num_buckets, max_distance):
  """Straight from the T5 paper's description, float64: n = query - key."""
  if bidirectional:
    half = num_buckets // 2
    return (half if n < 0 else 0) + _naive_bucket(abs(n), False, half, max_distance)
  n = max(n, 0)
  exact = num_buckets // 2
  if n < exact:
    return n
  return min(num_buckets - 1, exact + int(np.log(n / exact) / np.log(max_distance / exact)
                                          * (num_buckets - exact)))


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_buckets(bidirectional):
  q, k = np.arange(300), np.arange(300)
  module = t5_layers.RelativePositionBiases(32, 128, num_heads=1, bidirectional=bidirectional)
  table = np.arange(32, dtype=np.float32)[None]  # bias == bucket index
  bias = module.apply({"params": {"rel_embedding": table}}, q, k)[0, 0]
  want = np.array([[_naive_bucket(i - j, bidirectional, 32, 128) for j in k] for i in q])
  np.testing.assert_array_equal(np.asarray(bias, np.int64), want)


def test_rms_norm_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32) * 3
  scale = np.linspace(0.5, 2, 8).astype(np.float32)
  y = t5_layers.RMSNorm().apply({"params": {"scale": scale}}, x)
  want = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-6) * scale
  np.testing.assert_allclose(y, want, rtol=1e-5)


def test_encoder_padding_is_masked():
  cfg = _config()
  params = _init(cfg)
  enc, dec = _tokens()
  logits, aux = _apply(cfg)(params, enc, dec)
  # Other tokens at padded encoder positions (same mask): valid outputs and logits unchanged.
  enc2 = np.where(enc == 0, 37, enc)
  encoded2, _ = _apply(cfg, method=t5.T5.encode)(params, enc2, mask=enc != 0)
  valid = np.asarray(aux["encoder_mask"])
  np.testing.assert_allclose(np.asarray(encoded2)[valid], np.asarray(aux["encoded"])[valid],
                             atol=1e-5)
  logits2 = _apply(cfg, method=t5.T5.decode)(params, encoded2, enc != 0, dec)
  np.testing.assert_allclose(logits2, logits, atol=1e-4)


@pytest.mark.parametrize("variant", ["tiny", "tiny_v1_0"])
def test_decoder_is_causal(variant):
  cfg = _config(variant)
  params = _init(cfg)
  enc, dec = _tokens()
  logits, _ = _apply(cfg)(params, enc, dec)
  assert logits.shape == (2, 6, cfg.vocab_size)
  # Changing decoder token 3 leaves positions < 3 unchanged and changes position 3.
  dec2 = dec.copy()
  dec2[:, 3] = (dec[:, 3] + 5) % cfg.vocab_size
  logits3, _ = _apply(cfg)(params, enc, dec2)
  np.testing.assert_allclose(logits3[:, :3], logits[:, :3], atol=1e-5)
  assert np.abs(np.asarray(logits3[:, 3]) - np.asarray(logits[:, 3])).max() > 1e-3


@pytest.mark.parametrize("variant", ["tiny", "tiny_v1_0"])
def test_cached_decode_steps_equal_teacher_forcing(variant):
  cfg = _config(variant)
  params = _init(cfg)
  model = t5.T5(cfg)
  enc, dec = _tokens(1)
  logits, aux = _apply(cfg)(params, enc, dec)
  cache, static = model.apply(params, aux["encoded"], aux["encoder_mask"], 8,
                              method=t5.T5.init_cache)
  step_fn = jax.jit(lambda c, tok, i: model.apply(params, tok, c, static, i,
                                                   method=t5.T5.decode_step))
  for i in range(dec.shape[1]):
    step_logits, cache = step_fn(cache, dec[:, i], jnp.int32(i))
    np.testing.assert_allclose(step_logits, logits[:, i], rtol=1e-5, atol=1e-5)


def _train_loss(cfg, policy, enc, dec, rng):
  model = t5.T5(dataclasses.replace(cfg, remat_policy=policy))

  def loss(params):
    logits, _ = model.apply(params, enc, dec, train=True, rngs={"dropout": rng})
    return logits.astype(jnp.float32).std()

  return loss


def test_dropout_only_in_training_and_remat_forward():
  """Dropout acts only in training and is a function of the rng; remat keeps parameter names
  and values (dropout > 0 also checks that `deterministic` is static under remat)."""
  enc, dec = _tokens(2)
  cfg = _config(dropout_rate=0.3)
  params = _init(cfg)
  rng = jax.random.key(1, impl="rbg")  # cheaper to compile than threefry on CPU
  assert jax.tree.structure(partitioning.unbox(_abstract(
      dataclasses.replace(cfg, remat_policy="full")))) == jax.tree.structure(params)
  plain = jax.jit(_train_loss(cfg, "none", enc, dec, rng))(params)
  remat = jax.jit(_train_loss(cfg, "full", enc, dec, rng))(params)
  np.testing.assert_allclose(remat, plain, rtol=1e-6)
  eval_logits, _ = _apply(cfg)(params, enc, dec)
  assert abs(float(eval_logits.std()) - float(plain)) > 1e-4


@pytest.mark.slow
def test_remat_gradients_equal():
  enc, dec = _tokens(2)
  cfg = _config(dropout_rate=0.3)
  params = _init(cfg)
  rng = jax.random.key(1, impl="rbg")
  grads = [jax.jit(jax.grad(_train_loss(cfg, p, enc, dec, rng)))(params)
           for p in ("none", "full", "dots")]
  for other in grads[1:]:
    for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(grads[0])):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_encode_with_prefix_masks_only_prompt_padding():
  cfg = _config()
  params = _init(cfg)
  encode = _apply(cfg, method=t5.T5.encode)
  enc, _ = _tokens(5)
  prefix = np.random.default_rng(0).normal(size=(2, 3, cfg.emb_dim)).astype(np.float32)
  encoded, mask = encode(params, enc, prefix=prefix)
  assert encoded.shape == (2, 3 + enc.shape[1], cfg.emb_dim)
  np.testing.assert_array_equal(mask, np.concatenate([np.ones((2, 3), bool), enc != 0], 1))
  # The prefix attends to the prompt: changing a valid prompt token changes the prefix outputs.
  enc2 = enc.copy()
  enc2[:, 0] = enc[:, 0] + 1
  encoded2, _ = encode(params, enc2, prefix=prefix)
  assert np.abs(np.asarray(encoded2[:, :3]) - np.asarray(encoded[:, :3])).max() > 1e-4


def test_shift_right():
  np.testing.assert_array_equal(t5.shift_right(jnp.array([[5, 6, 1, 0]])), [[0, 5, 6, 1]])


def test_sharded_forward_on_a_fake_mesh_equals_unsharded():
  """Every logical name maps through the project's rules (data / fsdp / tensor parallel), and the
  activation constraints change layouts, not values."""
  from vidistill.parallel import mesh as mesh_lib
  cfg = _config()
  params = _init(cfg)
  enc, dec = _tokens(6)
  enc, dec = np.concatenate([enc, enc]), np.concatenate([dec, dec])  # batch 4 over data x fsdp
  want, _ = _apply(cfg)(params, enc, dec)
  mesh = mesh_lib.make_mesh({"data": 2, "fsdp": 2, "model": 2})
  shardings = partitioning.param_shardings(_abstract(cfg), mesh)
  sharded = partitioning.shard_params(params, shardings)
  kernel = sharded["params"]["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", "model")
  with partitioning.axis_rules(mesh):
    got, _ = jax.jit(lambda p, a, b: t5.T5(cfg).apply(p, a, b))(sharded, enc, dec)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
