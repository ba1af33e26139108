"""A stage starts from imported weights by config (config.init.import_vit / import_lm).

Tiny SigLIP and T5 checkpoints are written in the real formats (Hugging Face save_pretrained,
a big_vision npz, a T5X checkpoint); `vidistill train` imports them, and the model's outputs at
step 0 must equal those of transformers' models holding the same weights (the reference).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vidistill.convert import siglip  # noqa: E402
from vidistill.convert import t5 as t5_convert  # noqa: E402
from vidistill.models import t5 as t5_lib  # noqa: E402
from vidistill.models import trained as trained_lib  # noqa: E402
from vidistill.pipeline import steps as steps_lib  # noqa: E402
from vidistill.train import restore  # noqa: E402
from vidistill.train import stage  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "convert"))
import checkpoint_writers as writers  # noqa: E402
import stage_checks  # noqa: E402  (tests/train, on the path through its conftest)

_REPO = os.path.join(os.path.dirname(__file__), "..", "..")
_CONFIG = stage_checks.CONFIG


def _randomize(model, seed):
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():  # HF inits biases to 0 and norms to 1: move every weight
    for p in model.parameters():
      p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A tiny world, and checkpoints shaped like the tiny VLM (ViT mu/8, T5 tiny) in 4 formats."""
  root = tmp_path_factory.mktemp("imports")
  w, _, vocab_size = stage_checks.tiny_world_and_config(root)
  torch.manual_seed(0)
  vision = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(
      hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
      image_size=32, patch_size=8)).eval()
  _randomize(vision, 1)
  vision.save_pretrained(str(root / "siglip_hf"))
  flat, unknown = siglip.hf_to_big_vision(
      {k: v.numpy() for k, v in vision.state_dict().items()}, vision_heads=2)
  assert not unknown
  np.savez(str(root / "siglip.npz"), **{f"params/{k}": v for k, v in flat.items()})

  lm = transformers.T5ForConditionalGeneration(transformers.T5Config(
      vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
      num_heads=4, dropout_rate=0.0, feed_forward_proj="gated-gelu",
      tie_word_embeddings=False)).eval()
  _randomize(lm, 2)
  with torch.no_grad():  # T5 v1.1 (our "tiny") has an untied head: give it its own weights
    lm.lm_head.weight = torch.nn.Parameter(torch.randn(vocab_size, 32) * 0.25)
  hf_dir = str(root / "t5_hf")
  os.makedirs(hf_dir)
  from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top
  save_file({k: v.detach().clone().contiguous() for k, v in lm.state_dict().items()},
            os.path.join(hf_dir, "model.safetensors"))
  with open(os.path.join(hf_dir, "config.json"), "w") as f:
    json.dump({**lm.config.to_dict(), "tie_word_embeddings": False}, f)
  _, params = t5_convert.load_hf(hf_dir)
  writers.write_t5x(str(root / "t5x"), params, step=10)

  rng = np.random.default_rng(0)
  pixels = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  enc = rng.integers(2, vocab_size, (2, 12))
  dec = rng.integers(2, vocab_size, (2, 6))
  dec[:, 0] = 0
  with torch.no_grad():
    hidden = vision(pixel_values=torch.from_numpy(pixels.transpose(0, 3, 1, 2)))
    logits = lm(input_ids=torch.tensor(enc), decoder_input_ids=torch.tensor(dec)).logits
  return dict(root=root, world=w, pixels=pixels, enc=enc.astype(np.int32),
              dec=dec.astype(np.int32), vit_out=hidden.last_hidden_state.numpy(),
              lm_out=logits.numpy())


def _rel_err(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.abs(got - want).max() / np.abs(want).max())


def _check_against_reference(workdir, s):
  trained = trained_lib.load(workdir)
  module, params = trained.model.module, trained.params
  _, aux = module.video_encoder.image.apply({"params": params["video_encoder"]["image"]},
                                            s["pixels"])
  logits, _ = t5_lib.T5(module.t5_config).apply({"params": params["t5"]}, s["enc"], s["dec"])
  assert _rel_err(aux["encoded"], s["vit_out"]) <= 1e-4
  assert _rel_err(logits, s["lm_out"]) <= 1e-4
  return params


@pytest.mark.slow
def test_vidistill_train_imports_npz_and_hf_t5(setup, tmp_path):
  """The command line: a big_vision npz into the ViT, HF safetensors into the T5; one step at lr 0
  leaves the imported weights as they are, so the checkpoint holds step 0's model."""
  s = setup
  workdir = str(tmp_path / "run")
  cmd = [sys.executable, "-m", "vidistill.cli", "train",
         "--config", f"configs/{_CONFIG}:tiny,world={s['world']},steps=1",
         f"--config.init.import_vit={s['root'] / 'siglip.npz'}",
         f"--config.init.import_lm=t5_hf:{s['root'] / 't5_hf'}",
         "--config.optim.lr=0", "--config.optim.weight_decay=0", "--workdir", workdir]
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as a user
  out = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=600, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  _check_against_reference(workdir, s)


@pytest.mark.slow
def test_train_stage_imports_hf_siglip_and_t5x_then_trains(setup, tmp_path):
  s = setup
  config = steps_lib.load_config(_CONFIG, f"tiny,world={s['world']},steps=1,batch=8")
  config.mesh.data, config.mesh.fsdp = 2, 4  # imported leaves are placed in FSDP shards
  config.init.import_vit = f"siglip_hf:{s['root'] / 'siglip_hf'}"
  config.init.import_lm = str(s["root"] / "t5x")  # format read from the directory
  config.optim.lr, config.optim.weight_decay = 0.0, 0.0
  workdir = str(tmp_path / "run")
  assert stage.train_stage(config, workdir).resumed_from == "import"
  imported = siglip.flatten(_check_against_reference(workdir, s))
  # It then trains: the same imports at a real learning rate move the ViT; the LM stays frozen.
  config = restore.read_config(workdir)
  config.total_steps, config.optim.lr = 2, 1e-2
  workdir = str(tmp_path / "trains")
  result = stage.train_stage(config, workdir)
  assert result.step == 2 and all(np.isfinite(m["loss"]) for _, m in result.history)
  trained = siglip.flatten(trained_lib.load(workdir).params)
  stage_checks.assert_vision_moved_lm_kept(imported, trained, "t5/")


def test_import_errors_name_key_and_shapes(setup, tmp_path):
  """A T5X checkpoint of another shape: the error names the key and both shapes, before any
  training; a missing file and an unknown subtree are named too."""
  from vidistill.convert import imports  # pylint: disable=g-import-not-at-top
  s = setup
  config = steps_lib.load_config(_CONFIG, f"tiny,world={s['world']}")
  import jax  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  model = build_lib.build(config.model, vocab_size=300)  # the checkpoint's vocabulary is larger
  shapes = jax.eval_shape(model.init, jax.random.key(0), restore.example_batch(config, 8, 32))
  with pytest.raises(t5_convert.ConversionError) as e:
    imports.import_params([("t5", str(s["root"] / "t5x"))], shapes["params"])
  vocab = s["lm_out"].shape[-1]
  assert (f"wrong shape for 'token_embedder/embedding': checkpoint ({vocab}, 32), model expects "
          "(300, 32)") in str(e.value)
  with pytest.raises(imports.ImportSpecError, match="no parameter subtree 'llm'"):
    imports.import_params([("llm", str(s["root"] / "t5x"))], shapes["params"])
  with pytest.raises(imports.ImportSpecError, match="/nope.npz does not exist"):
    imports.parse_spec("big_vision:/nope.npz")


def test_imports_fill_the_scanned_layout(setup):
  """With nn.scan over the ViT blocks and T5 layers, every format fills the stacked parameters
  with the same numbers as the unrolled model's."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidistill.convert import imports  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.models import layer_stack  # pylint: disable=g-import-not-at-top
  s = setup
  config = steps_lib.load_config(_CONFIG, f"tiny,world={s['world']}")
  vocab_size = s["lm_out"].shape[-1]

  def template(scan):
    model = dict(config.model.to_dict())
    model["vit"] = dict(model["vit"], scan=scan)
    model["t5"] = dict(model["t5"], scan_layers=scan)
    built = build_lib.build(model, vocab_size=vocab_size)
    return jax.eval_shape(built.init, jax.random.key(0),
                          trained_lib.example_batch(config, 8, 32))["params"]

  flat, stacked = template(False), template(True)
  for vit_spec, lm_spec in ((f"{s['root'] / 'siglip.npz'}", f"{s['root'] / 't5_hf'}"),
                            (f"{s['root'] / 'siglip_hf'}", f"{s['root'] / 't5x'}")):
    entries = [("video_encoder/image", vit_spec), ("t5", lm_spec)]
    unrolled = siglip.unflatten(imports.import_params(entries, flat))
    want = layer_stack.stack_layers(layer_stack.stack_layers(unrolled, "encoderblock"), "layers")
    got = imports.import_params(entries, stacked)
    want = siglip.flatten(want)
    assert set(got) == set(want)
    for key, value in want.items():
      np.testing.assert_array_equal(got[key], value, err_msg=key)
