"""Tests for vidistill/models/video_encoder.py: per-frame ViT, zero temporal embedding, pooling."""
import jax
import numpy as np
import pytest

import numpy_transformer as ref
from vidistill.models import video_encoder as ve
from vidistill.models import vit
from vidistill.parallel import partitioning

B, T, S = 2, 3, 32  # 32px frames, patch 8 -> 4x4 grid, 16 tokens per frame


def _image():
  return np.random.default_rng(0).uniform(-1, 1, (B, S, S, 3)).astype(np.float32)


def _vit():
  return vit.ViT(variant="mu/8", depth=1, head_dim=8)


def test_video_of_copies_equals_image_model_at_init():
  encoder = ve.VideoEncoder(image=_vit(), max_frames=4)
  image = _image()
  video = np.repeat(image[:, None], T, axis=1)
  variables = partitioning.unbox(jax.jit(encoder.init)(jax.random.key(0), video))
  assert set(variables["params"]) == {"image", "temporal_embedding"}
  np.testing.assert_array_equal(variables["params"]["temporal_embedding"], 0)

  tokens, aux = jax.jit(encoder.apply)(variables, video)
  img_out, img_aux = jax.jit(_vit().apply)({"params": variables["params"]["image"]}, image)
  assert tokens.shape == (B, T * 16, 32)
  want = np.concatenate([np.asarray(img_aux["encoded"])] * T, axis=1)
  np.testing.assert_allclose(tokens, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(aux["frame_embeddings"], np.stack([img_out] * T, 1),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(aux["pooled"], img_out, rtol=1e-5, atol=1e-5)


def _run(encoder, video, seed=0):
  params = ref.random_params(encoder, video, seed=seed)
  return params, jax.jit(encoder.apply)({"params": params}, video)


def test_temporal_embedding_is_added_per_frame_and_pooling_matches_numpy():
  video = np.random.default_rng(1).uniform(-1, 1, (B, 4, S, S, 3)).astype(np.float32)
  full = ve.VideoEncoder(image=_vit(), max_frames=6)
  params, (tokens, aux) = _run(full, video)
  frame_tokens = np.asarray(aux["frame_tokens"])  # [B, T, 16, D]
  _, img_aux = jax.jit(_vit().apply)(
      {"params": params["image"]}, video.reshape(B * 4, S, S, 3))
  per_frame = np.asarray(img_aux["encoded"]).reshape(B, 4, 16, 32)
  temb = params["temporal_embedding"][:4]
  np.testing.assert_allclose(frame_tokens, per_frame + temb[None, :, None], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(tokens, frame_tokens.reshape(B, 64, 32), rtol=1e-6, atol=1e-6)

  pooled_enc = ve.VideoEncoder(image=_vit(), max_frames=6, spatial_tokens=4, temporal_pool=2)
  tokens_p, _ = jax.jit(pooled_enc.apply)({"params": params}, video)
  grid = frame_tokens.reshape(B, 4, 2, 2, 2, 2, 32)  # [B, T, sy, py, sx, px, D]
  want = grid.mean(axis=(3, 5)).reshape(B, 2, 2, 4, 32).mean(axis=2).reshape(B, 8, 32)
  np.testing.assert_allclose(tokens_p, want, rtol=1e-5, atol=1e-5)
  assert ve.num_tokens((4, 4), 4, spatial_tokens=4, temporal_pool=2) == tokens_p.shape[1]
  assert ve.num_tokens((4, 4), 4) == tokens.shape[1]


def _patches(x, p):
  """[N, H, W, C] -> [N, H/p, W/p, p*p*C] in the conv kernel's (py, px, c) order."""
  n, h, w, c = x.shape
  return x.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(
      n, h // p, w // p, p * p * c)


def test_frame_difference_embedding_is_zero_at_init_and_on_static_video_and_matches_numpy():
  rng = np.random.default_rng(2)
  video = rng.uniform(-1, 1, (B, T, S, S, 3)).astype(np.float32)
  plain = ve.VideoEncoder(image=_vit(), max_frames=4)
  motion = ve.VideoEncoder(image=_vit(), max_frames=4, frame_difference=True)
  variables = partitioning.unbox(jax.jit(motion.init)(jax.random.key(0), video))
  kernel = variables["params"]["difference_embedding"]["kernel"]
  assert kernel.shape == (8, 8, 3, 32) and not np.any(kernel)
  without = {"params": {k: v for k, v in variables["params"].items()
                        if k != "difference_embedding"}}
  np.testing.assert_allclose(jax.jit(motion.apply)(variables, video)[0],
                             jax.jit(plain.apply)(without, video)[0], rtol=1e-5, atol=1e-5)

  # Trained (random) weights: a video of one repeated frame still gives the image model's tokens.
  params, _ = _run(motion, video, seed=3)
  assert np.any(params["difference_embedding"]["kernel"])
  static = np.repeat(video[:, :1], T, axis=1)
  plain_params = {k: v for k, v in params.items() if k != "difference_embedding"}
  np.testing.assert_allclose(jax.jit(motion.apply)({"params": params}, static)[0],
                             jax.jit(plain.apply)({"params": plain_params}, static)[0],
                             rtol=1e-5, atol=1e-5)

  # A moving video: the stem is the image patch embedding plus that of the frame difference.
  diff = np.concatenate([np.zeros_like(video[:, :1]), np.diff(video, axis=1)], axis=1)
  k = np.asarray(params["difference_embedding"]["kernel"], np.float64).reshape(-1, 32)
  want_diff = _patches(diff.reshape(B * T, S, S, 3).astype(np.float64), 8) @ k
  emb = params["image"]["embedding"]
  want_img = (_patches(video.reshape(B * T, S, S, 3).astype(np.float64), 8)
              @ np.asarray(emb["kernel"], np.float64).reshape(-1, 32) + emb["bias"])
  stem = jax.jit(lambda p, v: motion.apply(p, v, capture_intermediates=True)[1])(
      {"params": params}, video)
  got = np.asarray(stem["intermediates"]["image"]["__call__"][0][1]["stem"])
  np.testing.assert_allclose(got, want_img + want_diff, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, shape, match", [
    ({}, (B, S, S, 3), r"\[B, T, H, W, 3\]"),
    ({"max_frames": 2}, (B, 3, S, S, 3), "max_frames=2"),
    ({"temporal_pool": 2}, (B, 3, S, S, 3), "temporal_pool=2 must divide the 3 frames"),
    ({"spatial_tokens": 5}, (B, 2, S, S, 3), "not a square"),
    ({"spatial_tokens": 9}, (B, 2, S, S, 3), "4x4 token grid to 3x3"),
])
def test_bad_settings_are_reported(kwargs, shape, match):
  encoder = ve.VideoEncoder(image=_vit(), **kwargs)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(encoder.init, jax.random.key(0), np.zeros(shape, np.float32))
