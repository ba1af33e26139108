"""notebooks/caption_a_video.ipynb runs top to bottom (nbclient) on checkpoints trained here.

A tiny world, one VLM stage and one dual encoder, a couple of steps each: the notebook's cells
are checked for errors and for what they print (captions per prompt, an answer, ranked clips).
Slow (world + two trainings, ~3 min on 2 cores): `pytest -m slow tests/test_notebook.py`.
"""
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "caption_a_video.ipynb")


def _config(relpath, arg):
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(ROOT, relpath))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_notebook_is_valid_and_clean():
  nbformat = pytest.importorskip("nbformat", reason="the test extra (nbformat) is not installed")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  # Shipped without outputs: a diff shows code changes only, and CI's run is the one that counts.
  assert all(not c.outputs and c.execution_count is None for c in code)
  assert any("parameters" in c.metadata.get("tags", []) for c in code)


def _paligemma_checkpoints(tmp_path, world_dir):
  """A tiny PaliGemma in Hugging Face's layout with a Gemma-style tokenizer.model (pad 0, EOS 1,
  BOS 2, "\\n" a piece), and a visual-adaptation workdir that imported it (lm=paligemma)."""
  import io
  import sentencepiece as spm
  transformers = pytest.importorskip("transformers")
  from vidistill.data import gemma_vocab
  from vidistill.train import stage as train_stage
  from vidistill.data.synthetic import corpus
  from vidistill.data.synthetic import world as world_lib
  captions = list(corpus.sentences({"labeled": world_lib.load_truth(world_dir, "labeled")}))
  sp = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(captions + ["caption en"] * 5), model_writer=sp, vocab_size=120,
      pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=["\n"],
      normalization_rule_name="identity", remove_extra_whitespaces=False, hard_vocab_limit=False,
      num_threads=1, minloglevel=2)
  pg_dir = tmp_path / "paligemma"
  pg_dir.mkdir()
  (pg_dir / "tokenizer.model").write_bytes(sp.getvalue())
  vocab = gemma_vocab.load_gemma_vocabulary(str(pg_dir / "tokenizer.model"))
  size = vocab.vocab_size
  transformers.PaliGemmaForConditionalGeneration(transformers.PaliGemmaConfig(
      vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, patch_size=8, image_size=32,
                         vision_use_head=False),
      text_config=dict(model_type="gemma", vocab_size=size, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                       head_dim=8),
      projection_dim=32, vocab_size=size, image_token_index=size - 1)).save_pretrained(str(pg_dir))
  config = _config("configs/train/visual_adaptation.py", f"tiny,lm=paligemma,world={world_dir},"
                   "steps=1,batch=8")
  config.checkpoint_every = 0
  config.init.import_vlm = str(pg_dir)
  config.data.vocab = str(pg_dir / "tokenizer.model")
  config.data.prompt = "caption en"
  config.model.prompt.bos_id = 2
  config.model.prompt.start_id = gemma_vocab.separator_id(vocab)
  train_stage.train_stage(config, str(tmp_path / "pg_adapted"))
  return str(pg_dir), str(tmp_path / "pg_adapted")


@pytest.mark.slow
def test_notebook_runs_on_a_small_checkpoint(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat", reason="the test extra (nbformat) is not installed")
  nbclient = pytest.importorskip("nbclient", reason="the test extra (nbclient) is not installed")
  from vidistill.data.synthetic import world
  from vidistill.train import stage as train_stage
  w = str(tmp_path / "world")
  world.synth(_config("configs/data/synthetic.py", "tiny"), w)
  # The video VLM: one step of visual adaptation from one step of image pre-training, so its
  # checkpoint records the clips' frames (an image-pretrained one records a single frame).
  for stage, name, init in (("image_pretrain", "image", ""),
                            ("visual_adaptation", "vlm", f",init={tmp_path / 'image'}"),
                            ("dual_encoder", "de", "")):
    config = _config(f"configs/train/{stage}.py", f"tiny,world={w},steps=1,batch=8{init}")
    config.checkpoint_every = 0
    train_stage.train_stage(config, str(tmp_path / name))

  pg_dir, adapted = _paligemma_checkpoints(tmp_path, w)
  monkeypatch.setenv("VIDISTILL_PALIGEMMA_DIR", pg_dir)
  monkeypatch.setenv("VIDISTILL_PALIGEMMA_ADAPTED_DIR", adapted)
  monkeypatch.setenv("VIDISTILL_VLM_DIR", str(tmp_path / "vlm"))
  monkeypatch.setenv("VIDISTILL_DUAL_ENCODER_DIR", str(tmp_path / "de"))
  monkeypatch.setenv("VIDISTILL_VIDEO", os.path.join(w, "videos", "test", "video0.mp4"))
  monkeypatch.setenv("VIDISTILL_CLIPS", os.path.join(w, "videos", "test", "*.mp4"))
  monkeypatch.delenv("MPLBACKEND", raising=False)  # The kernel's inline backend shows the figures.
  nb = nbformat.read(NOTEBOOK, as_version=4)
  # Raises CellExecutionError (with the cell and its traceback) on any cell error.
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()

  def printed(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

  text = "\n".join(printed(c) for c in nb.cells if c.cell_type == "code")
  assert "visual_adaptation (tiny): 8 frames of 32 px" in text
  assert "(8, 32, 32, 3) uint8" in text
  assert re.search(r"'caption en:' +-> '.*'  \(log-likelihood -?\d", text)
  assert re.search(r"'describe the video in detail en:' +-> ", text)
  assert "Q: what happens first?" in text
  ranked = re.findall(r"^(\d)\. (video\d+\.mp4)  cosine (-?[\d.]+)$", text, re.M)
  assert [r[0] for r in ranked] == ["1", "2", "3"]
  cosines = [float(r[2]) for r in ranked]
  assert cosines == sorted(cosines, reverse=True) and all(-1.001 <= c <= 1.001 for c in cosines)
  assert re.search(r"PaliGemma as released, 8 frames of 32 px: '.*'", text)
  assert re.search(r"after visual adaptation \(visual_adaptation\): '.*'", text)
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) == 2  # The frames and the retrieved clips.
