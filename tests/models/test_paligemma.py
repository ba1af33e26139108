"""Tests for vidistill/models/paligemma.py through the model API the trainer and decoders use:
cached decoding against full recomputation, scores against teacher-forced logits, the prompt
format, the image checkpoint being the video model at init, and `model.kind = "paligemma"`."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.models import build, decoding, losses, paligemma, t5, vlm

SEP = 1  # a vocabulary without BOS / "\n" uses its EOS as the separator
MODEL = {"kind": "paligemma", "vit": {"variant": "mu/8", "pool_type": "none"},
         "video": {"max_frames": 4}, "gemma": {"variant": "gemma2_tiny"},
         "prompt": {"bos_id": 2, "start_id": 5}}


def _batch(frames=2, seed=0):
  rng = np.random.default_rng(seed)
  return {"video": rng.integers(0, 256, (2, frames, 16, 16, 3)).astype(np.uint8),
          "prompt_tokens": np.array([[10, 11, 1, 0, 0], [20, 21, 22, 23, 1]], np.int32),
          "target_tokens": np.array([[30, 31, 1, 0, 0, 0], [40, 41, 42, 43, 44, 1]], np.int32)}


@pytest.fixture(scope="module")
def model_and_params():
  model = build.build(MODEL, vocab_size=128)
  params = jax.jit(lambda: nn.meta.unbox(model.init(jax.random.key(0), _batch())["params"]))()
  return model, params


def test_parameter_groups_for_freezing(model_and_params):
  _, params = model_and_params
  assert set(params) == {"video_encoder", "visual_projection", "llm"}
  assert not np.any(np.asarray(params["video_encoder"]["temporal_embedding"]))


def test_prompt_format_bos_prompt_then_separator():
  module = paligemma.PaliGemmaModule(None, paligemma.gemma_lib.decode_variant("gemma_tiny"),
                                     bos_id=2, eos_id=1, start_id=108)
  got = module.prompt_ids(jnp.array([[10, 11, 1, 0]]))
  np.testing.assert_array_equal(got, [[2, 10, 11, 0, 0]])  # EOS dropped; "\n" starts the answer


def _full_recompute(model, params, batch):
  """Greedy/beam reference callback: re-runs the teacher-forced model on the whole prefix of
  generated tokens every step (no cache)."""
  encoded, mask, _ = jax.jit(lambda v, p: model.module.apply({"params": params}, v, p,
                                                            method="encode"))(
      batch["video"], batch["prompt_tokens"])

  def tokens_to_logits(state):
    rows = state.sequences.shape[0]
    k = rows // encoded.shape[0]
    inputs = t5.shift_right(state.sequences, model.start_id)
    logits = model.module.apply({"params": params}, decoding.expand_rows(encoded, k),
                                decoding.expand_rows(mask, k), inputs, method="decode")
    return jax.lax.dynamic_index_in_dim(logits, state.step, 1, keepdims=False), state.cache
  return tokens_to_logits


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_cached_decoding_equals_full_recompute(model_and_params, method):
  model, params = model_and_params
  batch = _batch()
  cfg = vlm.DecodeConfig(method=method, max_decode_len=6, beam_size=3)
  tokens, aux = model.predict_batch(params, batch, cfg)
  ref = _full_recompute(model, params, batch)
  if method == "greedy":
    want, want_scores = decoding.sample(ref, batch_size=2, max_len=6, temperature=0.0,
                                        start_id=model.start_id)
  else:
    want, want_scores = decoding.beam_search(ref, batch_size=2, max_len=6, beam_size=3,
                                             start_id=model.start_id)
  np.testing.assert_array_equal(aux["all_tokens"], want)
  np.testing.assert_allclose(aux["scores"], want_scores, atol=1e-4)


def test_scores_equal_teacher_forced_log_likelihood(model_and_params):
  model, params = model_and_params
  batch = _batch()
  scores, aux = model.score_batch(params, batch)
  logits, _ = jax.jit(model.module.apply)(
      {"params": params}, batch["video"], batch["prompt_tokens"],
      t5.shift_right(batch["target_tokens"], model.start_id))
  targets = batch["target_tokens"]
  want = (losses.token_log_likelihood(logits, targets) * (targets != 0)).sum(-1)
  np.testing.assert_allclose(scores, want, rtol=1e-5)
  # Candidate answers [B, C, L]: each scored as if alone.
  both = dict(batch, target_tokens=np.stack([targets, targets[::-1]], axis=1))
  multi, _ = model.score_batch(params, both)
  np.testing.assert_allclose(multi[:, 0], want, rtol=1e-5)


def test_greedy_score_is_the_log_likelihood_of_its_tokens(model_and_params):
  model, params = model_and_params
  batch = _batch()
  tokens, aux = model.predict_batch(params, batch, vlm.DecodeConfig(max_decode_len=6))
  scores, _ = model.score_batch(params, dict(batch, target_tokens=np.asarray(tokens)))
  np.testing.assert_allclose(aux["scores"][:, 0], scores, atol=1e-4)


def test_loss_is_on_the_answer_only(model_and_params):
  """Padding after the answer's EOS neither adds loss nor changes it."""
  model, params = model_and_params
  batch = _batch()
  loss_fn = jax.jit(lambda p, b: model.loss_fn(p, b, None, train=False)[0])
  loss = loss_fn(params, batch)
  longer = dict(batch, target_tokens=np.pad(batch["target_tokens"], ((0, 0), (0, 3))))
  loss_longer = loss_fn(params, longer)
  np.testing.assert_allclose(loss, loss_longer, rtol=1e-5)


def test_image_checkpoint_is_the_video_model_at_init(model_and_params):
  """With the temporal embedding at zero, a video of T copies of one image gives the image
  tokens T times: the answer logits depend on the frame content, not on a temporal position."""
  model, params = model_and_params
  batch = _batch(frames=1)
  still = dict(batch, video=np.repeat(batch["video"], 2, axis=1))
  encode = jax.jit(lambda v, p: model.module.apply({"params": params}, v, p, method="encode")[0])
  prefix_1 = encode(batch["video"], batch["prompt_tokens"])
  prefix_2 = encode(still["video"], still["prompt_tokens"])
  n = prefix_1.shape[1] - 6  # image tokens of one frame (prompt: BOS + 5)
  np.testing.assert_allclose(prefix_2[:, n:2 * n], prefix_1[:, :n], atol=1e-6)
  np.testing.assert_allclose(prefix_2[:, :n], prefix_1[:, :n], atol=1e-6)


def test_sampling_is_a_function_of_the_seed(model_and_params):
  model, params = model_and_params
  cfg = vlm.DecodeConfig(method="sample", max_decode_len=6, num_samples=2, temperature=1.0)
  a = model.predict_batch(params, _batch(), cfg, rng=jax.random.key(3))[1]["all_tokens"]
  b = model.predict_batch(params, _batch(), cfg, rng=jax.random.key(3))[1]["all_tokens"]
  np.testing.assert_array_equal(a, b)
  assert a.shape == (2, 2, 6)
