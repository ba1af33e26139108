"""Tests for vidistill/models/vit.py against a float64 NumPy reference (numpy_transformer.py)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpy_transformer as ref
from vidistill.models import vit
from vidistill.parallel import partitioning


def test_decode_variant_published_sizes():
  assert vit.decode_variant("B/16") == dict(width=768, depth=12, mlp_dim=3072, num_heads=12,
                                            patch_size=(16, 16))
  assert vit.decode_variant("So400m/14") == dict(width=1152, depth=27, mlp_dim=4304,
                                                 num_heads=16, patch_size=(14, 14))
  assert vit.decode_variant("g") == dict(width=1408, depth=40, mlp_dim=6144, num_heads=16)
  assert vit.decode_variant("G/14")["width"] == 1664
  assert vit.decode_variant("L/16")["depth"] == 24


@pytest.mark.parametrize("bad, match", [("X/16", "unknown ViT size 'X'"),
                                        ("B/x", "patch size 'x'")])
def test_decode_variant_errors(bad, match):
  with pytest.raises(vit.VariantError, match=match):
    vit.decode_variant(bad)


def test_fields_override_variant_and_missing_size_is_an_error():
  assert vit.ViT(variant="mu/8", depth=3).dims().depth == 3
  with pytest.raises(vit.VariantError, match="width is unset"):
    vit.ViT(depth=1).dims()


def test_normalize_uint8():
  x = np.array([0, 255, 128], np.uint8)
  np.testing.assert_allclose(vit.normalize_uint8(x), [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)


def _images(b=2, size=32, seed=1):
  return np.random.default_rng(seed).uniform(-1, 1, (b, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("pool, head", [("map", 16), ("gap", None), ("tok", 8)])
def test_forward_matches_numpy_reference(pool, head):
  model = vit.ViT(variant="mu/8", pool_type=pool, head_dim=head)
  x = _images()
  params = ref.random_params(model, x)
  out, aux = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, x)
  want, want_tokens = ref.vit(x, params, depth=2, patch=8, pool=pool)
  np.testing.assert_allclose(np.asarray(out, np.float64), want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(aux["encoded"], np.float64), want_tokens,
                             rtol=1e-4, atol=1e-5)
  assert aux["grid"] == (4, 4) and aux["stem"].shape == (2, 4, 4, 32)


def test_remat_changes_nothing_numerically():
  x = np.random.default_rng(0).standard_normal((2, 4, 32)).astype(np.float32)
  plain, remat = vit.Encoder(1, 64, 2), vit.Encoder(1, 64, 2, remat_policy="full")
  params = ref.random_params(plain, x)

  def loss(model, p):
    return jnp.sum(model.apply({"params": p}, x)[0] ** 2)

  g1 = jax.jit(jax.grad(lambda p: loss(plain, p)))(params)
  g2 = jax.jit(jax.grad(lambda p: loss(remat, p)))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g1, g2)


def test_bfloat16_compute_keeps_float32_params():
  model = vit.ViT(variant="mu/8", dtype=jnp.bfloat16)
  x = _images()
  shapes = jax.eval_shape(lambda: partitioning.unbox(model.init(jax.random.key(0), x)))
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(shapes))
  variables = {"params": ref.random_params(model, x)}
  out, aux = jax.jit(model.apply)(variables, x)
  assert out.dtype == jnp.bfloat16 and aux["encoded"].dtype == jnp.bfloat16
  ref_out, _ = jax.jit(vit.ViT(variant="mu/8").apply)(variables, x)
  np.testing.assert_allclose(np.asarray(out, np.float32), ref_out, atol=0.1)


def test_dropout_needs_rng_only_in_training():
  model = vit.ViT(variant="mu/8", depth=1, pool_type="gap", dropout=0.5)
  x = _images()
  variables = {"params": ref.random_params(model, x)}
  a, _ = jax.jit(model.apply)(variables, x)
  b, _ = jax.jit(lambda v, x, k: model.apply(v, x, train=True, rngs={"dropout": k}))(
      variables, x, jax.random.key(1))
  assert not np.allclose(a, b)


def test_resample_posemb():
  pe = np.random.default_rng(0).standard_normal((1, 16, 8)).astype(np.float32)
  assert vit.resample_posemb(pe, (4, 4)) is not None
  np.testing.assert_array_equal(vit.resample_posemb(pe, (4, 4)), pe)
  big = vit.resample_posemb(pe, (8, 8))
  assert big.shape == (1, 64, 8)
  # A constant grid stays constant under linear resampling.
  const = np.ones((1, 9, 2), np.float32)
  np.testing.assert_allclose(vit.resample_posemb(const, (6, 6)), np.ones((1, 36, 2)), rtol=1e-6)


@pytest.mark.parametrize("hw, patch, c", [((8, 12), (4, 4), 3), ((10, 9), (3, 2), 5)])
def test_patch_embedding_is_the_valid_strided_convolution(hw, patch, c):
  # Independent reference: XLA's convolution with the same kernel (nn.Conv's layout, HWIO), in
  # float64 on float32 inputs; sizes include a border that does not fill a patch (VALID drops it).
  rng = np.random.default_rng(0)
  image = rng.normal(size=(2, *hw, c)).astype(np.float32)
  module = vit.PatchEmbedding(6, patch)
  params = module.init(jax.random.key(1), image)["params"]
  kernel, bias = params["kernel"].unbox(), params["bias"].unbox()
  assert kernel.shape == (*patch, c, 6) and bias.shape == (6,)
  bias = bias + 0.5  # Non-zero, so the bias's broadcast is checked too.
  got = module.apply({"params": {"kernel": kernel, "bias": bias}}, image)
  with jax.enable_x64():
    want = jax.lax.conv_general_dilated(
        jnp.asarray(image, jnp.float64), jnp.asarray(kernel, jnp.float64), patch, "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest") + bias
  assert got.shape == want.shape == (2, hw[0] // patch[0], hw[1] // patch[1], 6)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_patch_embedding_keeps_nn_conv_parameters():
  # Same tree, shapes and initial values as the nn.Conv it replaced: old checkpoints and the
  # big_vision / Hugging Face converters fill it unchanged.
  image = jnp.zeros((1, 8, 8, 3))
  ours = vit.PatchEmbedding(16, (4, 4)).init(jax.random.key(2), image)["params"]
  conv = nn.Conv(16, (4, 4), strides=(4, 4), padding="VALID",
                 kernel_init=nn.initializers.lecun_normal()).init(jax.random.key(2), image)["params"]
  assert jax.tree.map(np.shape, nn.unbox(ours)) == jax.tree.map(np.shape, conv)
  np.testing.assert_array_equal(nn.unbox(ours)["kernel"], conv["kernel"])
