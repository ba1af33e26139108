"""Tests for vidistill/models/gemma.py: Hugging Face Gemma / Gemma 2 causal LMs on the same weights
(the reference), the KV-cache path against the full forward pass, masks against a naive loop, and
the size table against the published parameter counts."""
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import gemma

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _hf_causal_lm(kind, seed=0):
  torch.manual_seed(seed)
  fields = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_attention_heads=4,
                head_dim=8, num_hidden_layers=4, num_key_value_heads=2)
  if kind == "gemma2":
    fields.update(query_pre_attn_scalar=12, attn_logit_softcapping=5.0,
                  final_logit_softcapping=20.0, sliding_window=6)
    model = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**fields))
  else:
    model = transformers.GemmaForCausalLM(transformers.GemmaConfig(**fields))
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name:
        p.add_(0.3 * torch.randn_like(p))
      if "embed_tokens" in name:
        p.mul_(20.0)
  return model.eval()


def _import(hf, kind):
  from vidistill.convert import paligemma as convert  # pylint: disable=import-outside-toplevel
  cfg = convert.gemma_config_from_hf({**hf.config.to_dict(), "model_type": kind})
  state = {k: v.numpy() for k, v in hf.state_dict().items()}
  bv = convert.hf_to_big_vision(state, cfg, 1, gemma2=kind == "gemma2", source="hf")
  template = {"llm": nn.meta.unbox(jax.eval_shape(
      lambda: gemma.Gemma(cfg).init(jax.random.key(0), *_causal_inputs(np.zeros((1, 4), int)))
  )["params"])}
  return cfg, convert.big_vision_to_ours(bv, template, source="hf")["llm"]


def _causal_inputs(tokens):
  b, length = tokens.shape
  positions = jnp.broadcast_to(jnp.arange(length), (b, length))
  x = jnp.zeros((b, length, 32))
  return x, positions, jnp.ones((b, length), bool), jnp.zeros((b, length), bool)


def _forward(cfg, params, tokens):
  model = gemma.Gemma(cfg)
  x = model.apply({"params": params}, jnp.asarray(tokens), method=gemma.Gemma.embed)
  _, positions, valid, prefix = _causal_inputs(tokens)
  with jax.default_matmul_precision("highest"):
    logits, _ = model.apply({"params": params}, x, positions, valid, prefix)
  return np.asarray(logits)


@pytest.mark.parametrize("kind", ["gemma", "gemma2"])
def test_causal_lm_matches_transformers(kind):
  hf = _hf_causal_lm(kind)
  cfg, params = _import(hf, kind)
  assert cfg.is_local(0) == (kind == "gemma2") and not cfg.is_local(1)
  tokens = np.random.default_rng(0).integers(3, 96, (2, 15))  # longer than the window of 6
  with torch.no_grad():
    want = hf(input_ids=torch.tensor(tokens)).logits.numpy()
  assert np.abs(want).max() > 1.0
  np.testing.assert_allclose(_forward(cfg, params, tokens), want, atol=2e-5, rtol=0)


def _naive_mask(q_pos, k_pos, k_valid, q_prefix, k_prefix, window):
  b, lq = q_pos.shape
  out = np.zeros((b, 1, lq, k_pos.shape[1]), bool)
  for i, q, k in itertools.product(range(b), range(lq), range(k_pos.shape[1])):
    causal = k_pos[i, k] <= q_pos[i, q] and (window is None or q_pos[i, q] - k_pos[i, k] < window)
    out[i, 0, q, k] = k_valid[i, k] and (causal or (q_prefix[i, q] and k_prefix[i, k]))
  return out


@pytest.mark.parametrize("window", [None, 3])
def test_prefix_lm_mask_matches_naive_loop(window):
  rng = np.random.default_rng(1)
  valid = rng.random((2, 9)) > 0.2
  positions = np.asarray(gemma.positions_from_valid(jnp.asarray(valid)))
  prefix = np.arange(9)[None].repeat(2, 0) < np.array([[4], [6]])
  got = gemma.prefix_lm_mask(jnp.asarray(positions), jnp.asarray(positions), jnp.asarray(valid),
                             jnp.asarray(prefix), jnp.asarray(prefix), window)
  np.testing.assert_array_equal(np.asarray(got),
                                _naive_mask(positions, positions, valid, prefix, prefix, window))


def test_positions_skip_padding():
  valid = jnp.array([[True, True, False, False, True, True]])
  np.testing.assert_array_equal(gemma.positions_from_valid(valid), [[0, 1, 1, 1, 2, 3]])


@pytest.mark.parametrize("variant, scan", [("gemma_tiny", False), ("gemma2_tiny", False),
                                           ("gemma2_tiny", True)])
def test_cached_decoding_equals_full_forward(variant, scan):
  """Prefill a padded prefix (bidirectional), then decode one token a step: the logits equal the
  full forward pass over the same sequence (Gemma 2: past its sliding window of 8)."""
  cfg = gemma.decode_variant(variant, scan_layers=scan)
  model = gemma.Gemma(cfg)
  rng = np.random.default_rng(2)
  p, n = 7, 9
  tokens = jnp.asarray(rng.integers(3, 128, (2, p + n)))
  valid = jnp.ones((2, p + n), bool).at[0, 3:5].set(False)  # padding inside example 0's prefix
  in_prefix = jnp.broadcast_to(jnp.arange(p + n) < p, (2, p + n))
  positions = gemma.positions_from_valid(valid)
  params = model.init(jax.random.key(0), jnp.zeros((2, p + n, cfg.width)), positions, valid,
                      in_prefix)["params"]
  params = nn.meta.unbox(params)
  x = model.apply({"params": params}, tokens, method=gemma.Gemma.embed)
  with jax.default_matmul_precision("highest"):
    want, _ = model.apply({"params": params}, x, positions, valid, in_prefix)
    cache = model.apply({"params": params}, x[:, :p], positions[:, :p], valid[:, :p],
                        in_prefix[:, :p], p + n, method=gemma.Gemma.prefill)
    static = {"positions": positions, "valid": valid, "prefix": in_prefix}
    step = jax.jit(lambda *a: model.apply({"params": params}, *a, method=gemma.Gemma.decode_step))
    for t in range(p, p + n):
      logits, cache = step(tokens[:, t], positions[:, t], cache, static, jnp.int32(t))
      np.testing.assert_allclose(np.asarray(logits), np.asarray(want[:, t]), atol=1e-5, rtol=0,
                                 err_msg=f"position {t}")


def test_scanned_layers_equal_unrolled():
  """Same weights in the two layouts (layer_stack.stack_layers) give the same logits; the
  scanned tree is big_vision's `layers/...` with a leading layer axis."""
  from vidistill.models import layer_stack  # pylint: disable=import-outside-toplevel
  cfg = gemma.decode_variant("gemma2_tiny")
  tokens = np.random.default_rng(3).integers(3, 128, (2, 12))
  inputs = (jnp.zeros((2, 12, cfg.width)),) + _causal_inputs(tokens)[1:]
  params = nn.meta.unbox(gemma.Gemma(cfg).init(jax.random.key(1), *inputs)["params"])
  stacked = layer_stack.stack_layers(params, "layers")
  assert stacked["layers"]["attn"]["q_einsum"]["w"].shape == (4, 4, 32, 8)
  scanned = gemma.decode_variant("gemma2_tiny", scan_layers=True)
  want = _forward(cfg, params, tokens)
  np.testing.assert_allclose(_forward(scanned, stacked, tokens), want, atol=1e-5, rtol=0)


# Published totals (tied embedding counted once) of the Hugging Face releases.
@pytest.mark.parametrize("variant, count", [("gemma_2b", 2_506_172_416),
                                            ("gemma2_2b", 2_614_341_888),
                                            ("gemma2_9b", 9_241_705_984),
                                            ("gemma2_27b", 27_227_128_320)])
def test_size_table_matches_published_parameter_counts(variant, count):
  cfg = gemma.decode_variant(variant)
  b, length = 1, 2
  shapes = jax.eval_shape(lambda: gemma.Gemma(cfg).init(
      jax.random.key(0), jnp.zeros((b, length, cfg.width)), jnp.zeros((b, length), int),
      jnp.ones((b, length), bool), jnp.zeros((b, length), bool)))
  total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nn.meta.unbox(shapes)))
  assert total == count


def test_embedding_scale_is_rounded_to_the_compute_dtype():
  cfg = gemma.decode_variant("gemma_tiny", dtype="bfloat16", width=48)
  model = gemma.Gemma(cfg)
  params = jax.jit(lambda: nn.meta.unbox(model.init(
      jax.random.key(0), jnp.zeros((1, 2, 48)), jnp.zeros((1, 2), int), jnp.ones((1, 2), bool),
      jnp.zeros((1, 2), bool))["params"]))()
  table = params["embedder"]["embedding"]
  got = model.apply({"params": params}, jnp.array([[5]]), method=gemma.Gemma.embed)
  scale = jnp.asarray(48 ** 0.5, jnp.bfloat16)  # 6.9282 -> 6.9375 in bfloat16
  assert float(scale) != 48 ** 0.5
  np.testing.assert_array_equal(np.asarray(got[0, 0], np.float32),
                                np.asarray(table[5].astype(jnp.bfloat16) * scale, np.float32))


def test_bad_sizes_are_named():
  with pytest.raises(ConfigError, match="gemma_3b"):
    gemma.decode_variant("gemma_3b")
  with pytest.raises(ConfigError, match="num_kv_heads=3"):
    gemma.decode_variant("gemma_tiny", num_kv_heads=3)
  with pytest.raises(ConfigError, match="bogus"):
    gemma.decode_variant("gemma_tiny", bogus=1)
