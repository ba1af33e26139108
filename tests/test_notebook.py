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


@pytest.mark.slow
def test_notebook_runs_on_a_small_checkpoint(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat", reason="the test extra (nbformat) is not installed")
  nbclient = pytest.importorskip("nbclient", reason="the test extra (nbclient) is not installed")
  from vidistill.data.synthetic import world
  from vidistill.train import stage as train_stage
  w = str(tmp_path / "world")
  world.synth(_config("configs/data/synthetic.py", "tiny"), w)
  for stage, name in (("image_pretrain", "vlm"), ("dual_encoder", "de")):
    config = _config(f"configs/train/{stage}.py", f"tiny,world={w},steps=1,batch=8")
    config.checkpoint_every = 0
    train_stage.train_stage(config, str(tmp_path / name))

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
  assert "image_pretrain (tiny): 8 frames of 32 px" in text
  assert "(8, 32, 32, 3) uint8" in text
  assert re.search(r"'caption en:' +-> '.*'  \(log-likelihood -?\d", text)
  assert re.search(r"'describe the video in detail en:' +-> ", text)
  assert "Q: what happens first?" in text
  ranked = re.findall(r"^(\d)\. (video\d+\.mp4)  cosine (-?[\d.]+)$", text, re.M)
  assert [r[0] for r in ranked] == ["1", "2", "3"]
  cosines = [float(r[2]) for r in ranked]
  assert cosines == sorted(cosines, reverse=True) and all(-1.001 <= c <= 1.001 for c in cosines)
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) == 2  # The frames and the retrieved clips.
