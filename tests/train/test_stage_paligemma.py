"""A stage of the method with a PaliGemma-shaped VLM (`lm=paligemma`), its weights imported by
config (`config.init.import_vlm`) from a Hugging Face PaliGemma checkpoint written by the test."""
import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vidistill.convert import imports  # noqa: E402
from vidistill.convert import paligemma as convert  # noqa: E402
from vidistill.convert import siglip  # noqa: E402
from vidistill.models import build as build_lib  # noqa: E402
from vidistill.models import trained as trained_lib  # noqa: E402
from vidistill.pipeline import steps as steps_lib  # noqa: E402
from vidistill.train import checkpoints as ckpt_lib  # noqa: E402
from vidistill.train import restore  # noqa: E402
from vidistill.train import stage  # noqa: E402
import stage_checks  # noqa: E402  (tests/train, on the path through its conftest)

_CONFIG = stage_checks.CONFIG


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A tiny world and a PaliGemma checkpoint shaped like `lm=paligemma`'s tiny model (ViT mu/8 on
  32 px frames, gemma_tiny) with the world's vocabulary."""
  root = tmp_path_factory.mktemp("paligemma")
  w, config, vocab_size = stage_checks.tiny_world_and_config(root, "lm=paligemma")
  torch.manual_seed(0)
  hf = transformers.PaliGemmaForConditionalGeneration(transformers.PaliGemmaConfig(
      vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, patch_size=8, image_size=32,
                         vision_use_head=False),
      text_config=dict(model_type="gemma", vocab_size=vocab_size, hidden_size=32,
                       intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=1, head_dim=8),
      projection_dim=32, vocab_size=vocab_size, image_token_index=vocab_size - 1)).eval()
  hf.save_pretrained(str(root / "hf"))
  return dict(root=root, world=w, config=config, hf=str(root / "hf"), vocab_size=vocab_size)


def test_import_vlm_fills_the_whole_model(setup):
  """`config.init.import_vlm = <HF dir>` (format read from its config.json) gives the converter's
  parameters for every leaf but the temporal embedding, which is zero."""
  s = setup
  model = build_lib.build(s["config"].model, vocab_size=s["vocab_size"])
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          restore.example_batch(s["config"], 8, 32))["params"]
  entries = imports.entries_from_config({"import_vlm": s["hf"]},
                                        build_lib.IMPORT_TARGETS["paligemma"])
  assert entries == [("", s["hf"])]
  got = imports.import_params(entries, shapes)
  want = siglip.flatten(convert.from_hf_safetensors(s["hf"], shapes))
  assert got.keys() == want.keys() and "llm/layers_1/mlp/linear" in got
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  assert not np.any(got["video_encoder/temporal_embedding"])


@pytest.mark.slow
def test_visual_adaptation_from_imported_paligemma(setup, tmp_path):
  """Stage 1 from the imported checkpoint: the ViT moves, the Gemma stays as imported."""
  s = setup
  config = steps_lib.load_config(_CONFIG, f"tiny,lm=paligemma,world={s['world']},steps=3,batch=8")
  assert config.model.kind == "paligemma" and tuple(config.frozen) == ("llm/.*",)
  config.mesh.data, config.mesh.fsdp = 2, 4  # Gemma's parameters sharded by its logical axes
  config.init.import_vlm = s["hf"]
  config.optim.lr = 1e-2
  workdir = str(tmp_path / "run")
  result = stage.train_stage(config, workdir)
  assert result.resumed_from == "import" and result.step == 3
  assert all(np.isfinite(m["loss"]) for _, m in result.history)
  trained = siglip.flatten(ckpt_lib.load_params(workdir, trained_lib.load(workdir).params))
  imported = siglip.flatten(convert.from_hf_safetensors(s["hf"], trained_lib.load(
      workdir).params))
  stage_checks.assert_vision_moved_lm_kept(imported, trained, "llm/")
