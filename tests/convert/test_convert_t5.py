"""Tests for vidistill/convert/t5.py against the reference implementation: Hugging Face
`T5ForConditionalGeneration` (torch, CPU) built offline from tiny random configs."""
import dataclasses
import json
import os
import sys

import flax
import jax
import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # a test dependency, like transformers
transformers = pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

from vidistill.convert import t5 as convert  # noqa: E402
from vidistill.models import t5  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import checkpoint_writers as writers  # noqa: E402


def _hf_model(feed_forward_proj, tie, seed=0, **kw):
  torch.manual_seed(seed)
  fields = dict(vocab_size=48, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_decoder_layers=3,
                num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=12,
                dropout_rate=0.0, feed_forward_proj=feed_forward_proj, tie_word_embeddings=tie)
  fields.update(kw)
  model = transformers.T5ForConditionalGeneration(transformers.T5Config(**fields)).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "layer_norm" in name:  # HF initialises norm scales to 1: make them matter
        p.add_(0.2 * torch.randn_like(p))
    if not tie:  # transformers >= 5 always ties; untie like a T5 v1.1 checkpoint
      model.lm_head.weight = torch.nn.Parameter(torch.randn(fields["vocab_size"], 16) * 0.25)
  return model


def _save(model, directory, tie):
  """Writes what the hub holds: tied models via save_pretrained (transformers 5 layout); untied
  ones with a separate lm_head.weight and a v1.1-style config.json (transformers 4 layout)."""
  if tie:
    model.save_pretrained(directory)
    return
  os.makedirs(directory, exist_ok=True)
  state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
  save_file(state, os.path.join(directory, "model.safetensors"))
  config = model.config.to_dict()
  config.pop("scale_decoder_outputs", None)
  config["tie_word_embeddings"] = False
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config, f)


def _inputs(seed=0, vocab=48, enc_len=30):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, vocab, size=(2, enc_len)).astype(np.int64)  # > max_distance: all buckets
  enc[1, 9:] = 0
  enc[1, 8] = 1
  dec = rng.integers(2, vocab, size=(2, 16)).astype(np.int64)
  dec[:, 0] = 0
  return enc, dec


def _rel_err(got, want):
  return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("proj, tie", [("gated-gelu", False), ("relu", True), ("relu", False),
                                       ("gated-gelu", True), ("gated-silu", False)])
def test_hf_import_matches_transformers(tmp_path, proj, tie):
  hf = _hf_model(proj, tie)
  _save(hf, str(tmp_path), tie)
  config, params = convert.load_hf(str(tmp_path))
  assert config.logits_via_embedding == tie and config.logits_scaled == tie
  assert config.num_decoder_layers == 3 and config.relpos_max_distance == 12
  enc, dec = _inputs()
  with torch.no_grad():
    out = hf(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc != 0),
             decoder_input_ids=torch.tensor(dec))
  scanned_config, scanned = convert.load_hf(str(tmp_path), scan_layers=True)
  assert scanned["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape[0] == 2  # [layers, mlp, embed]
  for cfg, p in ((config, params), (scanned_config, scanned)):
    model = t5.T5(cfg)
    encoded, mask = model.apply({"params": p}, enc.astype(np.int32), method=t5.T5.encode)
    logits = model.apply({"params": p}, encoded, mask, dec.astype(np.int32), method=t5.T5.decode)
    assert _rel_err(encoded, out.encoder_last_hidden_state.numpy()) <= 1e-4
    assert _rel_err(logits, out.logits.numpy()) <= 1e-4


def test_relative_position_buckets_match_transformers():
  from transformers.models.t5.modeling_t5 import T5Attention
  rel = torch.arange(-400, 401)
  for bidirectional in (True, False):
    want = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional,
                                                 num_buckets=32, max_distance=128).numpy()
    table = t5.layers.bucket_table(bidirectional, 32, 128)
    # HF's relative_position is key - query; ours is indexed by n = query - key.
    n = np.clip(-rel.numpy(), -128, 128)
    np.testing.assert_array_equal(table[n + 128], want)


@pytest.mark.parametrize("variant, hf_fields", [
    ("t5_small", dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                      feed_forward_proj="relu", tie_word_embeddings=True)),
    ("t5_1_1_small", dict(d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6,
                          feed_forward_proj="gated-gelu", tie_word_embeddings=False)),
])
def test_parameter_count_matches_transformers(variant, hf_fields):
  with torch.device("meta"):
    hf = transformers.T5ForConditionalGeneration(transformers.T5Config(**hf_fields))
  n_hf = sum(p.numel() for p in hf.parameters())  # tied: shared counted once
  if not hf_fields["tie_word_embeddings"]:
    n_hf += hf.lm_head.weight.numel()  # transformers 5 ties it; v1.1 checkpoints do not
  shapes = convert.expected_shapes(t5.decode_variant(variant))
  assert sum(int(np.prod(s)) for s in shapes.values()) == n_hf


def test_hf_config_mapping_of_real_configs():
  # google/ul2 config.json (as on the hub; transformers 4 era: no scale_decoder_outputs).
  ul2 = dict(d_ff=16384, d_kv=256, d_model=4096, feed_forward_proj="gated-silu", num_heads=16,
             num_layers=32, num_decoder_layers=32, vocab_size=32128, tie_word_embeddings=False,
             dropout_rate=0.1)
  cfg = convert.config_from_hf(ul2)
  assert cfg == t5.decode_variant("ul2")
  # google/t5-v1_1-base and t5-base.
  v11 = dict(d_ff=2048, d_kv=64, d_model=768, feed_forward_proj="gated-gelu", num_heads=12,
             num_layers=12, tie_word_embeddings=False)
  assert convert.config_from_hf(v11) == t5.decode_variant("t5_1_1_base")
  v10 = dict(d_ff=3072, d_kv=64, d_model=768, num_heads=12, num_layers=12)  # relu, tied default
  assert convert.config_from_hf(v10) == t5.decode_variant("t5_base")
  with pytest.raises(convert.ConversionError, match="feed_forward_proj='gated-tanh-x'"):
    convert.config_from_hf(dict(feed_forward_proj="gated-tanh-x"))


def test_bfloat16_safetensors_and_mismatch_errors(tmp_path):
  hf = _hf_model("gated-gelu", False, seed=1)
  state = {k: v.detach().clone().to(torch.bfloat16) for k, v in hf.state_dict().items()}
  path = str(tmp_path / "bf16.safetensors")
  save_file(state, path)
  tensors = convert.read_safetensors(path)
  assert tensors["shared.weight"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(tensors["shared.weight"].astype(np.float32),
                                state["shared.weight"].float().numpy())
  config = convert.config_from_hf(hf.config.to_dict() | {"tie_word_embeddings": False}, tensors)
  params = convert.hf_to_params(tensors, config)
  q = state["encoder.block.1.layer.0.SelfAttention.q.weight"].float().numpy()
  np.testing.assert_array_equal(params["encoder"]["layers_1"]["attention"]["query"]["kernel"],
                                q.T.reshape(16, 4, 4))

  broken = dict(tensors)
  del broken["decoder.block.2.layer.1.EncDecAttention.k.weight"]
  broken["encoder.block.0.layer.1.DenseReluDense.wo.weight"] = np.zeros((16, 25), np.float32)
  broken["encoder.extra.weight"] = np.zeros((3,), np.float32)
  with pytest.raises(convert.ConversionError) as err:
    convert.hf_to_params(broken, config, source="ckpt")
  message = str(err.value)
  assert "3 problem(s)" in message
  assert "missing key 'decoder.block.2.layer.1.EncDecAttention.k.weight'" in message
  assert ("wrong shape for 'encoder.block.0.layer.1.DenseReluDense.wo.weight': checkpoint "
          "(16, 25), model expects (16, 24)") in message
  assert "unexpected key 'encoder.extra.weight' (shape (3,))" in message


# ----------------------------------------------------------------------------- T5X

@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_t5x_checkpoint_import(tmp_path, dtype):
  hf = _hf_model("relu", True, seed=2)
  _save(hf, str(tmp_path / "hf"), True)
  config, params = convert.load_hf(str(tmp_path / "hf"))
  writers.write_t5x(str(tmp_path / "t5x"), params, step=100)
  writers.write_t5x(str(tmp_path / "t5x"), params, step=250, dtype=dtype)
  loaded = convert.load_t5x(str(tmp_path / "t5x"), config)  # the latest step
  for (path, want), got in zip(flax.traverse_util.flatten_dict(params, sep="/").items(),
                               jax.tree.leaves(flax.traverse_util.flatten_dict(loaded, sep="/"))):
    assert got.dtype == np.float32, path
    if dtype == "float32" or path.endswith("scale"):
      np.testing.assert_array_equal(got, want, err_msg=path)
    else:
      np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2, err_msg=path)
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  # Step 100 by number, and the reference outputs through the model.
  loaded100 = convert.load_t5x(str(tmp_path / "t5x"), config, step=100)
  enc, dec = _inputs(1)
  with torch.no_grad():
    want = hf(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc != 0),
              decoder_input_ids=torch.tensor(dec)).logits.numpy()
  logits, _ = t5.T5(config).apply({"params": loaded100}, enc.astype(np.int32),
                                  dec.astype(np.int32))
  assert _rel_err(logits, want) <= 1e-4


def test_t5x_errors(tmp_path):
  config = t5.decode_variant("tiny")
  with pytest.raises(convert.ConversionError, match="not a T5X checkpoint"):
    convert.load_t5x(str(tmp_path), config)
  hf = _hf_model("relu", True, seed=3)
  _save(hf, str(tmp_path / "hf"), True)
  real_config, params = convert.load_hf(str(tmp_path / "hf"))
  ckpt = writers.write_t5x(str(tmp_path / "t5x"), params, step=1)
  with pytest.raises(convert.ConversionError) as err:
    convert.load_t5x(ckpt, dataclasses.replace(real_config, mlp_dim=30))
  message = str(err.value)
  assert "checkpoint_1 does not fit the T5 config; 10 problem(s)" in message
  assert ("wrong shape for 'encoder/layers_0/mlp/wi/kernel': checkpoint (16, 24), model expects "
          "(16, 30)") in message
