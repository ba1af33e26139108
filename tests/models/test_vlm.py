"""Tests for vidistill/models/vlm.py: the PaLI-style prefix model and its t5x-style model API,
on a tiny VideoEncoder + T5 with random parameters."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import losses, t5, video_encoder, vit, vlm
from t5_testing import random_params

# One layer per stack keeps XLA compiles short; the multi-layer cache is tested in test_t5.py.
T5_SMALL = dict(emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, num_encoder_layers=1,
                num_decoder_layers=1, vocab_size=32)
FRAMES, SIZE, PATCH, VIT_WIDTH = 2, 16, 8, 32  # -> 2 frames x 4 patches = 8 visual tokens


def _batch(seed=0):
  """4 examples: divisible by the data x fsdp axes of the fake mesh."""
  rng = np.random.default_rng(seed)
  return {"video": rng.integers(0, 256, (4, FRAMES, SIZE, SIZE, 3), dtype=np.uint8),
          "prompt_tokens": np.array([[5, 6, 1, 0], [7, 1, 0, 0], [9, 9, 9, 1], [4, 1, 0, 0]],
                                    np.int32),
          "target_tokens": np.array([[9, 10, 11, 1, 0], [12, 1, 0, 0, 0], [3, 4, 5, 6, 1],
                                     [7, 7, 1, 0, 0]], np.int32)}


@pytest.fixture(scope="module")
def setup():
  encoder = video_encoder.VideoEncoder(
      image=vit.ViT(variant="mu", depth=1, patch_size=(PATCH, PATCH), pool_type="none"),
      max_frames=FRAMES)
  model = vlm.make_model(encoder, "tiny", z_loss=1e-3, **T5_SMALL)
  abstract = jax.eval_shape(model.init, jax.random.key(0), _batch())
  return model, abstract, random_params(abstract, seed=3)


_FORWARD, _LOSS_AND_GRAD = {}, {}


def _loss_and_grad(model, params, batch):
  """Jitted `((loss, metrics), grads)` of `loss_fn`, compiled once per model."""
  if id(model) not in _LOSS_AND_GRAD:
    _LOSS_AND_GRAD[id(model)] = jax.jit(jax.value_and_grad(
        lambda p, b: model.loss_fn(p, b, None), has_aux=True))
  return _LOSS_AND_GRAD[id(model)](params, batch)


def _forward(model, params, batch, decoder_inputs):
  """Jitted teacher-forced `(logits, aux)`, compiled once per model."""
  if id(model) not in _FORWARD:
    _FORWARD[id(model)] = jax.jit(lambda p, v, pr, d: model.module.apply({"params": p}, v, pr, d))
  return _FORWARD[id(model)](params, batch["video"], batch["prompt_tokens"], decoder_inputs)


def test_parameters_and_names(setup):
  model, abstract, params = setup
  assert set(params) == {"video_encoder", "visual_projection", "t5"}
  flat = flax.traverse_util.flatten_dict(abstract["params"], sep="/")
  assert all(isinstance(v, flax.linen.Partitioned) for v in flat.values())
  assert flat["visual_projection/kernel"].names == (None, "embed")
  assert flat["visual_projection/kernel"].value.shape == (VIT_WIDTH, 16)
  assert "t5/encoder/layers_0/attention/query/kernel" in flat


def test_video_to_float():
  video = np.array([0, 255, 51], np.uint8)
  np.testing.assert_allclose(vlm.video_to_float(video), [-1.0, 1.0, 51 / 127.5 - 1], rtol=1e-6)
  floats = np.array([-0.5, 0.25], np.float32)
  np.testing.assert_array_equal(vlm.video_to_float(floats), floats)


def test_loss_is_token_cross_entropy_over_targets_with_prefix_mask(setup):
  model, _, params = setup
  batch = _batch()
  (loss, metrics), grads = _loss_and_grad(model, params, batch)
  logits, aux = _forward(model, params, batch, t5.shift_right(batch["target_tokens"]))
  want, _ = losses.cross_entropy_loss(logits, batch["target_tokens"], z_loss=1e-3)
  np.testing.assert_allclose(loss, want, rtol=1e-6)
  assert metrics["num_tokens"] == 14
  # Encoder mask: 8 visual tokens always valid, then the prompt's non-pad tokens.
  n_visual = FRAMES * (SIZE // PATCH) ** 2
  assert aux["encoder_mask"].shape == (4, n_visual + 4)
  np.testing.assert_array_equal(aux["encoder_mask"][:, :n_visual], True)
  np.testing.assert_array_equal(aux["encoder_mask"][:, n_visual:], batch["prompt_tokens"] != 0)
  # Gradients reach both towers and the projection.
  for tower in ("video_encoder", "visual_projection", "t5"):
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[tower])) > 0, tower
  # Filling the prompt padding with real tokens unmasks them and changes the loss.
  filled = np.where(batch["prompt_tokens"] == 0, 17, batch["prompt_tokens"])
  (loss_filled, _), _ = _loss_and_grad(model, params, dict(batch, prompt_tokens=filled))
  assert abs(float(loss_filled) - float(loss)) > 1e-5
  # Target padding is excluded: logits at padded target positions carry no weight.
  assert float(losses.cross_entropy_loss(
      logits.at[0, 4].add(100.0), batch["target_tokens"], z_loss=1e-3)[0]) == float(want)


def test_greedy_prediction_equals_full_recompute_and_scores(setup):
  model, _, params = setup
  batch = _batch(1)
  decode = vlm.DecodeConfig("greedy", max_decode_len=5)
  tokens, aux = model.predict_batch(params, batch, decode)
  assert tokens.shape == (4, 5) and aux["all_tokens"].shape == (4, 1, 5)
  # Reference: re-run the whole model on the prefix so far, take the argmax (stop at EOS).
  seqs = np.zeros((4, 5), np.int32)
  done = np.zeros(4, bool)
  for step in range(5):
    logits, _ = _forward(model, params, batch, t5.shift_right(jnp.asarray(seqs)))
    nxt = np.where(done, 0, np.argmax(np.asarray(logits[:, step]), -1))
    seqs[:, step] = nxt
    done |= nxt == t5.EOS_ID
  np.testing.assert_array_equal(tokens, seqs)
  # score_batch of the prediction = its decode log-likelihood; candidates [B, C, L] -> [B, C].
  # (A random model can emit the pad id 0 mid-answer; scoring reads it as padding, so such
  # rows are left out of this comparison.)
  scores, score_aux = model.score_batch(params, dict(batch, target_tokens=tokens))
  ended = np.cumsum(seqs == t5.EOS_ID, axis=1) - (seqs == t5.EOS_ID) > 0
  clean = ~((seqs == 0) & ~ended).any(axis=1)
  assert clean.sum() >= 2
  np.testing.assert_allclose(np.asarray(scores)[clean], np.asarray(aux["scores"][:, 0])[clean],
                             rtol=1e-5)
  assert score_aux["token_scores"].shape == (4, 5)
  candidates = np.stack([np.asarray(tokens), batch["target_tokens"]], axis=1).astype(np.int32)
  cand_scores, _ = model.score_batch(params, dict(batch, target_tokens=candidates))
  assert cand_scores.shape == (4, 2)
  np.testing.assert_allclose(cand_scores[:, 0], scores, rtol=1e-5)
  single, _ = model.score_batch(params, dict(batch, target_tokens=candidates[:, 1]))
  np.testing.assert_allclose(cand_scores[:, 1], single, rtol=1e-5)


def test_beam_and_sampling(setup):
  model, _, params = setup
  batch = _batch(2)
  tokens, aux = model.predict_batch(params, batch,
                                    vlm.DecodeConfig("beam", max_decode_len=5, beam_size=3))
  assert aux["all_tokens"].shape == (4, 3, 5)
  np.testing.assert_array_equal(tokens, aux["all_tokens"][:, 0])
  assert np.all(np.diff(np.asarray(aux["scores"]), axis=1) <= 0)
  decode = vlm.DecodeConfig("sample", max_decode_len=5, num_samples=2, temperature=0.8, top_p=0.9)
  a, aux_a = model.predict_batch(params, batch, decode, rng=jax.random.key(0))
  b, _ = model.predict_batch(params, batch, decode, rng=jax.random.key(0))
  np.testing.assert_array_equal(a, b)
  assert np.all(np.diff(np.asarray(aux_a["scores"]), axis=1) <= 0)
  with pytest.raises(ValueError, match="needs an rng"):
    model.predict_batch(params, batch, decode)


def test_decode_config_errors():
  with pytest.raises(ConfigError, match="method='nucleus'"):
    vlm.DecodeConfig("nucleus")
  with pytest.raises(ConfigError, match="positive"):
    vlm.DecodeConfig(max_decode_len=0)


def test_sharded_loss_on_a_fake_mesh(setup):
  """Init traces under the project's axis rules and the loss is the same on a data / fsdp /
  tensor-parallel mesh of the 8 fake CPU devices."""
  from vidistill.parallel import mesh as mesh_lib
  from vidistill.parallel import partitioning
  model, _, params = setup
  batch = _batch(4)
  (want, _), _ = _loss_and_grad(model, params, batch)
  mesh = mesh_lib.make_mesh({"data": 2, "fsdp": 2, "model": 2})
  with partitioning.axis_rules(mesh):
    abstract = jax.eval_shape(model.init, jax.random.key(0), batch)
    shardings = partitioning.param_shardings(abstract, mesh)
    sharded = partitioning.shard_params({"params": params}, shardings)["params"]
    batch = jax.device_put(batch, partitioning.data_sharding(mesh))
    got = jax.jit(lambda p, b: model.loss_fn(p, b, None)[0])(sharded, batch)
  np.testing.assert_allclose(got, want, rtol=1e-5)
