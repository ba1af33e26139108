"""Tests for vidistill/convert/paligemma.py against the reference implementation: Hugging Face
`PaliGemmaForConditionalGeneration` (torch, CPU) built offline from tiny random configs, with
Gemma (PaliGemma) and Gemma 2 (PaliGemma 2) language models."""
import os
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import paligemma_testing as pt  # noqa: E402

from vidistill.convert import paligemma as convert  # noqa: E402
from vidistill.convert import siglip  # noqa: E402
from vidistill.models import t5  # noqa: E402
from vidistill.models import vlm  # noqa: E402

KINDS = ["gemma", "gemma2"]


@pytest.fixture(scope="module", params=KINDS)
def saved(request, tmp_path_factory):
  hf = pt.hf_paligemma(request.param)
  directory = str(tmp_path_factory.mktemp(request.param))
  hf.save_pretrained(directory)
  return request.param, hf, directory


def _load(directory, **kw):
  return convert.load_hf(directory, max_frames=4, bos_id=pt.BOS, start_id=pt.SEP, **kw)


def _logits(model, params, batch):
  with jax.default_matmul_precision("highest"):
    logits, _ = model.module.apply({"params": params}, batch["video"], batch["prompt_tokens"],
                                   t5.shift_right(batch["target_tokens"], pt.SEP))
  return np.asarray(logits)


def test_hf_import_matches_transformers_logits(saved):
  kind, hf, directory = saved
  model, params = _load(directory)
  assert model.module.gemma_config.post_norms == (kind == "gemma2")
  batch = pt.batch()
  got = _logits(model, params, batch)
  for b in range(2):
    want = pt.hf_answer_logits(hf, batch, b)
    assert np.abs(want).max() > 1.0  # the comparison is not between near-zero logits
    np.testing.assert_allclose(got[b, :len(want)], want, atol=2e-5, rtol=0)


def test_hf_import_into_scanned_layers_matches_transformers(tmp_path):
  """A model with scan_layers (big_vision's stacked `llm/layers/...`) imports the same weights."""
  hf = pt.hf_paligemma("gemma2", seed=2)
  hf.save_pretrained(str(tmp_path))
  model, params = _load(str(tmp_path), scan_layers=True)
  assert params["llm"]["layers"]["attn"]["q_einsum"]["w"].shape[0] == 4
  batch = pt.batch()
  want = pt.hf_answer_logits(hf, batch, 1)
  np.testing.assert_allclose(_logits(model, params, batch)[1, :len(want)], want, atol=2e-5,
                             rtol=0)


def test_gemma2_window_shorter_than_the_prefix_matches_transformers(tmp_path):
  """HF's PaliGemma 2 mask keeps the whole prefix visible in the local layers; so do we."""
  hf = pt.hf_paligemma("gemma2", seed=1, window=8)
  hf.save_pretrained(str(tmp_path))
  model, params = _load(str(tmp_path))
  assert model.module.gemma_config.sliding_window == 8
  batch = pt.batch(1)
  got = _logits(model, params, batch)
  want = pt.hf_answer_logits(hf, batch, 1)
  np.testing.assert_allclose(got[1, :len(want)], want, atol=2e-5, rtol=0)


def test_greedy_decoding_matches_hf_generate(saved):
  _, hf, directory = saved
  model, params = _load(directory)
  batch = pt.batch()
  with jax.default_matmul_precision("highest"):
    tokens, _ = model.predict_batch(params, batch,
                                    vlm.DecodeConfig(method="greedy", max_decode_len=14))
  for b in range(2):
    want = pt.hf_greedy(hf, batch, b, max_new_tokens=14)
    got = [int(t) for t in np.asarray(tokens[b])][:len(want)]
    assert got == want, (b, got, want)


def test_sharded_safetensors_import_equals_single_file(saved, tmp_path):
  _, hf, directory = saved
  hf.save_pretrained(str(tmp_path), max_shard_size="20KB")
  shards = [f for f in os.listdir(tmp_path) if f.endswith(".safetensors")]
  assert len(shards) > 1 and os.path.exists(tmp_path / "model.safetensors.index.json")
  _, single = _load(directory)
  _, sharded = _load(str(tmp_path))
  flat_a, flat_b = siglip.flatten(single), siglip.flatten(sharded)
  assert flat_a.keys() == flat_b.keys()
  for key in flat_a:
    np.testing.assert_array_equal(flat_a[key], flat_b[key], err_msg=key)


def _big_vision_npz(params, path, *, scanned, fused_qkv=False):
  """Writes `params` in big_vision PaliGemma's npz layout, independently of the converter:
  img/ (ViT, head = projector), llm/ (Gemma: embedder/input_embedding, layers stacked)."""
  flat = siglip.flatten(params)
  out = {}
  for key, value in flat.items():
    value = np.asarray(value)
    if key.startswith("video_encoder/image/"):
      rest = key[len("video_encoder/image/"):]
      if scanned:
        rest = rest.replace("encoderblock_0/", "encoderblock/")
        if "encoderblock_" in rest:
          continue
        if "encoderblock/" in rest:
          value = np.stack([np.asarray(flat[key.replace("encoderblock_0/", f"encoderblock_{i}/")])
                            for i in range(2)])
      out["params/img/" + rest] = value
    elif key.startswith("visual_projection/"):
      out["params/img/head/" + key.rsplit("/", 1)[1]] = value
    elif key == "llm/embedder/embedding":
      out["params/llm/embedder/input_embedding"] = value
    elif key.startswith("llm/layers_"):
      i, rest = key[len("llm/layers_"):].split("/", 1)
      out.setdefault("llm_layers/" + rest, {})[int(i)] = value
    elif key.startswith("llm/"):
      out["params/" + key] = value
  for key in [k for k in out if k.startswith("llm_layers/")]:
    per_layer = out.pop(key)
    rest = key[len("llm_layers/"):]
    if scanned:
      out["params/llm/layers/" + rest] = np.stack([per_layer[i] for i in sorted(per_layer)])
    else:
      for i, value in per_layer.items():
        out[f"params/llm/layers/{i}/{rest}"] = value
  if fused_qkv:  # what big_vision stores when num_kv_heads == num_heads
    q = out.pop("params/llm/layers/attn/q_einsum/w")
    kv = out.pop("params/llm/layers/attn/kv_einsum/w")
    out["params/llm/layers/attn/qkv_einsum/w"] = np.concatenate([q[:, None], kv], axis=1)
  assert not any(k.startswith("params/video_encoder") for k in out)
  np.savez(path, **out)


@pytest.mark.parametrize("scanned", [True, False])
def test_big_vision_npz_imports_to_the_same_parameters(saved, tmp_path, scanned):
  _, _, directory = saved
  model, params = _load(directory)
  path = str(tmp_path / "paligemma.npz")
  _big_vision_npz(params, path, scanned=scanned)
  with np.load(path, allow_pickle=False) as data:
    assert "params/img/head/kernel" in data.files
    assert ("params/llm/layers/attn/q_einsum/w" in data.files) == scanned
  imported = convert.from_big_vision_npz(path, params)
  flat_a, flat_b = siglip.flatten(params), siglip.flatten(imported)
  assert flat_a.keys() == flat_b.keys()
  for key in flat_a:
    np.testing.assert_array_equal(flat_a[key], flat_b[key], err_msg=key)


def test_fused_qkv_npz_is_split(tmp_path):
  """Multi-head (N == K) checkpoints store one qkv_einsum [3, N, D, H]."""
  hf = pt.hf_paligemma("gemma")
  hf.config.text_config.num_key_value_heads = 4
  hf = transformers.PaliGemmaForConditionalGeneration(hf.config).eval()
  hf.save_pretrained(str(tmp_path / "hf"))
  _, params = _load(str(tmp_path / "hf"))
  path = str(tmp_path / "fused.npz")
  _big_vision_npz(params, path, scanned=True, fused_qkv=True)
  imported = convert.from_big_vision_npz(path, params)
  np.testing.assert_array_equal(imported["llm"]["layers_1"]["attn"]["kv_einsum"]["w"],
                                params["llm"]["layers_1"]["attn"]["kv_einsum"]["w"])


def test_mismatch_names_the_keys(saved, tmp_path):
  _, _, directory = saved
  _, params = _load(directory)
  path = str(tmp_path / "bad.npz")
  _big_vision_npz(params, path, scanned=True)
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files if "final_norm" not in k}
  np.savez(path, **arrays)
  with pytest.raises(siglip.CheckpointMismatchError, match="llm/final_norm/scale"):
    convert.from_big_vision_npz(path, params)


def test_config_without_paligemma_sections_is_refused(tmp_path):
  (tmp_path / "config.json").write_text('{"model_type": "t5"}')
  with pytest.raises(siglip.CheckpointMismatchError, match="not a PaliGemma config"):
    convert.hf_configs(str(tmp_path))
