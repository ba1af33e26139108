"""`vidistill pipeline --dry_run`: configs resolve and model shapes come out of jax.eval_shape."""
import pytest

from vidistill.pipeline import dry_run
from vidistill.pipeline import layout


def test_quick_resolves_every_vlm_stage():
  out = dry_run.check(layout.load_config("pipeline.py", "quick"))
  assert set(out["stages"]) == set(layout.VLM_STAGES)
  assert all(s["parameters"] > 10_000 for s in out["stages"].values())
  assert "report" in out["steps"]


@pytest.mark.slow
def test_paper_resolves_with_shardings_and_lists_its_data():
  out = dry_run.check(layout.load_config("pipeline.py", "paper"))
  vlm = out["stages"]["visual_adaptation"]
  assert vlm["parameters"] > 4e9  # ViT-G/14 (~1.8B) + UL2-3B (~2.9B).
  assert vlm["shardings"]["mesh"] == {"data": 16, "fsdp": 16, "model": 1}
  assert vlm["shardings"]["sharded_parameters"] > 0
  assert out["stages"]["dual_encoder"]["batch_size"] == 1024
  assert {"vit_import", "lm_import", "data:eval"} <= set(out["data_paths"])
