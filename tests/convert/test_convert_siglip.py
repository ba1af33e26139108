"""Tests for vidistill/convert/siglip.py: HF SigLIP (torch, random weights) and big_vision npz."""
import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import numpy_transformer as ref  # noqa: E402  (float64 reference reading big_vision's layout)

from vidistill.convert import siglip  # noqa: E402
from vidistill.models import dual_encoder as de  # noqa: E402
from vidistill.models import vit  # noqa: E402

WIDTH, DEPTH, MLP, HEADS, PATCH, SIZE = 32, 2, 64, 2, 8, 32


def _vit(**kw):
  return vit.ViT(width=WIDTH, depth=DEPTH, mlp_dim=MLP, num_heads=HEADS,
                 patch_size=(PATCH, PATCH), **kw)


def _template(model, *args):
  return jax.eval_shape(lambda: siglip_unbox(model.init(jax.random.key(0), *args)))["params"]


def siglip_unbox(tree):
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  return nn.meta.unbox(tree)


def _randomize(torch_model, seed=0):
  import torch  # pylint: disable=import-outside-toplevel
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():  # HF inits biases to 0 and LN to 1: move every weight so all are checked
    for p in torch_model.parameters():
      p.add_(0.05 * torch.randn(p.shape, generator=gen))


def _rel_err(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return np.linalg.norm(got - want) / np.linalg.norm(want)


@pytest.fixture(scope="module")
def hf_vision(tmp_path_factory):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  cfg = transformers.SiglipVisionConfig(
      hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH,
      num_attention_heads=HEADS, image_size=SIZE, patch_size=PATCH)
  torch.manual_seed(0)
  model = transformers.SiglipVisionModel(cfg).eval()
  _randomize(model)
  path = str(tmp_path_factory.mktemp("hf_vision"))
  model.save_pretrained(path)
  pixels = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
  with torch.no_grad():
    out = model(pixel_values=torch.from_numpy(pixels.transpose(0, 3, 1, 2)))
  return path, pixels, out.last_hidden_state.numpy(), out.pooler_output.numpy()


@pytest.mark.parametrize("scan", [False, True])
def test_hf_vision_import_matches_transformers(hf_vision, scan):
  """Also into a scanned ViT: the importer stacks the blocks into `encoderblock/...`."""
  path, pixels, hidden, pooled = hf_vision
  model = _vit(pool_type="map", scan=scan)
  params = siglip.from_hf_safetensors(path, _template(model, pixels))
  out, aux = jax.jit(model.apply)({"params": params}, pixels)
  assert _rel_err(aux["encoded"], hidden) <= 1e-4
  assert _rel_err(out, pooled) <= 1e-4


def test_hf_import_reports_wrong_sizes(hf_vision):
  path, pixels, _, _ = hf_vision
  wrong = vit.ViT(width=WIDTH, depth=DEPTH + 1, mlp_dim=2 * MLP, num_heads=HEADS,
                  patch_size=(PATCH, PATCH))
  with pytest.raises(siglip.CheckpointMismatchError) as e:
    siglip.from_hf_safetensors(path, _template(wrong, pixels))
  msg = str(e.value)
  assert "missing in checkpoint: Transformer/encoderblock_2/LayerNorm_0/scale" in msg
  assert "wrong shape: Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel: " \
         "checkpoint (32, 64) vs model (32, 128)" in msg


def test_hf_text_import_matches_transformers(tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  cfg = transformers.SiglipTextConfig(
      vocab_size=40, hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH,
      num_attention_heads=HEADS, max_position_embeddings=8, projection_size=16,
      pad_token_id=1, bos_token_id=2, eos_token_id=3)
  torch.manual_seed(0)
  model = transformers.SiglipTextModel(cfg).eval()
  _randomize(model, seed=1)
  model.save_pretrained(str(tmp_path))
  tokens = np.random.default_rng(0).integers(0, 40, (2, 8)).astype(np.int32)
  with torch.no_grad():
    want = model(input_ids=torch.from_numpy(tokens).long()).pooler_output.numpy()
  tower = de.TextTransformer(width=WIDTH, depth=DEPTH, mlp_dim=MLP, num_heads=HEADS, variant=None,
                             vocab_size=40, max_len=8, head_dim=16, mask_padding=False)
  params = siglip.from_hf_safetensors(str(tmp_path), _template(tower, tokens), root="txt")
  got, _ = jax.jit(tower.apply)({"params": params}, tokens)
  assert _rel_err(got, want) <= 1e-4


# --- big_vision npz -------------------------------------------------------------------------


def _write_big_vision_npz(path, img, txt, *, scan=False, bf16_key=None):
  """Writes `params/img/...`, `params/txt/...`, `params/t`, `params/b` as big_vision's npz."""
  flat = {f"params/img/{k}": v for k, v in siglip.flatten(img).items()}
  flat.update({f"params/txt/{k}": v for k, v in siglip.flatten(txt).items()})
  flat["params/t"] = np.array([np.log(10.0)], np.float32)
  flat["params/b"] = np.array([-10.0], np.float32)
  if scan:  # big_vision scan=True: one stacked entry per parameter, leading dim = depth
    stacked = {}
    for k in list(flat):
      if "/Transformer/encoderblock_" in k:
        head, rest = k.split("/encoderblock_", 1)
        i, tail = rest.split("/", 1)
        stacked.setdefault(f"{head}/encoderblock/{tail}", {})[int(i)] = flat.pop(k)
    for k, parts in stacked.items():
      flat[k] = np.stack([parts[i] for i in sorted(parts)])
  if bf16_key:
    import ml_dtypes  # pylint: disable=import-outside-toplevel
    flat[bf16_key] = flat[bf16_key].astype(ml_dtypes.bfloat16)
  np.savez(path, **flat)


@pytest.fixture(scope="module")
def dual():
  model = de.DualEncoder(img=_vit(pool_type="map", head_dim=16),
                         txt=de.TextTransformer(variant="mu", vocab_size=40, max_len=8,
                                                head_dim=16, mask_padding=False),
                         temporal_type="transformer", temporal_heads=2)
  video = np.random.default_rng(0).uniform(-1, 1, (2, 2, SIZE, SIZE, 3)).astype(np.float32)
  tokens = np.ones((2, 8), np.int32)
  template = _template(model, video, tokens)
  rand = ref.random_params(model, video, tokens)
  return model, video, tokens, template, rand


@pytest.mark.parametrize("scan", [False, True])
def test_npz_dual_encoder_round_trip(tmp_path, dual, scan):
  model, video, tokens, _, rand = dual
  path = str(tmp_path / "siglip.npz")
  key = "params/img/Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel"
  _write_big_vision_npz(path, rand["img"], rand["txt"], scan=scan,
                        bf16_key=None if scan else key)
  with np.load(path, allow_pickle=False) as f:  # the layout really is big_vision's
    assert "params/img/MAPHead_0/probe" in f.files and "params/txt/Embed_0/embedding" in f.files
    if not scan:
      assert f[key].dtype.kind == "V"  # bfloat16 written as 2-byte void, as np.save does

  params = siglip.from_big_vision_npz(path, rand, root="", allow_missing=("temporal/.*",))
  np.testing.assert_allclose(params["t"], [np.log(10.0)], rtol=1e-6)
  np.testing.assert_array_equal(params["txt"]["Embed_0"]["embedding"],
                                rand["txt"]["Embed_0"]["embedding"])
  np.testing.assert_array_equal(params["temporal"]["pos_embedding"],
                                rand["temporal"]["pos_embedding"])  # kept from the template
  # The image tower computes what a float64 reading of the big_vision layout computes.
  img = siglip.from_big_vision_npz(path, rand["img"], root="img")
  frames = video.reshape(-1, SIZE, SIZE, 3)
  out, _ = jax.jit(model.img.apply)({"params": img}, frames)
  npz_tree = siglip.unflatten(siglip.big_vision_subtree(siglip.load_npz(path), "img"))
  want, _ = ref.vit(frames, {k: v for k, v in ref.f64(
      jax.tree.map(lambda a: np.asarray(a, np.float32), npz_tree)).items()},
                    depth=DEPTH, patch=PATCH, pool="map")
  np.testing.assert_allclose(np.asarray(out, np.float64), want, rtol=1e-4, atol=1e-5)


def test_npz_import_into_boxed_init_params(tmp_path, dual):
  """The template the docs show, `vit.init(...)["params"]` straight from flax: its leaves are
  boxed (LogicallyPartitioned) and must be read through."""
  model, video, _, _, rand = dual
  path = str(tmp_path / "siglip.npz")
  _write_big_vision_npz(path, rand["img"], rand["txt"])
  frames = video.reshape(-1, SIZE, SIZE, 3)
  boxed = model.img.init(jax.random.key(1), frames)["params"]
  assert any(hasattr(x, "unbox") for x in jax.tree.leaves(
      boxed, is_leaf=lambda x: hasattr(x, "unbox")))
  img = siglip.from_big_vision_npz(path, boxed, root="img")
  for key, value in siglip.flatten(rand["img"]).items():
    np.testing.assert_array_equal(siglip.flatten(img)[key], value, err_msg=key)


def test_npz_mismatches_name_every_key(tmp_path, dual):
  _, _, _, template, rand = dual
  img = dict(rand["img"])
  img.pop("pos_embedding")
  img["extra"] = np.zeros(3, np.float32)
  img["embedding"] = {"kernel": np.zeros((4, 4, 3, WIDTH), np.float32),
                      "bias": rand["img"]["embedding"]["bias"]}
  path = str(tmp_path / "bad.npz")
  _write_big_vision_npz(path, img, rand["txt"])
  with pytest.raises(siglip.CheckpointMismatchError) as e:
    siglip.from_big_vision_npz(path, template["img"], root="img")
  msg = str(e.value)
  assert "missing in checkpoint: pos_embedding (model shape (1, 16, 32))" in msg
  assert "unexpected in checkpoint: extra (checkpoint shape (3,))" in msg
  assert "wrong shape: embedding/kernel: checkpoint (4, 4, 3, 32) vs model (8, 8, 3, 32)" in msg
  with pytest.raises(siglip.CheckpointMismatchError, match="top-level names: \\['b', 'img'"):
    siglip.from_big_vision_npz(path, template["img"], root="image")


def test_npz_position_embeddings_are_resampled(tmp_path, dual):
  _, _, _, _, rand = dual
  img = dict(rand["img"])
  img["pos_embedding"] = np.ones((1, 4, WIDTH), np.float32)  # 2x2 grid, e.g. a 16px checkpoint
  path = str(tmp_path / "lowres.npz")
  _write_big_vision_npz(path, img, rand["txt"])
  params = siglip.from_big_vision_npz(path, rand["img"], root="img")
  assert params["pos_embedding"].shape == (1, 16, WIDTH)
  np.testing.assert_allclose(params["pos_embedding"], 1.0, rtol=1e-6)
  with pytest.raises(siglip.CheckpointMismatchError, match="pos_embedding: checkpoint"):
    siglip.from_big_vision_npz(path, rand["img"], root="img", resample_posemb=False)
