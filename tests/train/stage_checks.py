"""What the stage tests that import weights share (test_stage_import.py: SigLIP + T5,
test_stage_paligemma.py: PaliGemma): a tiny world with the visual adaptation stage's config on it,
and the check that stage 1 trained the ViT and left the imported language model as it was."""
import os

import ml_collections
import numpy as np

from vidistill.data.synthetic import world
from vidistill.pipeline import steps as steps_lib
from vidistill.train import stage_input

CONFIG = "train/visual_adaptation.py"


def tiny_world_and_config(root: os.PathLike, args: str = ""
                          ) -> tuple[str, ml_collections.ConfigDict, int]:
  """A tiny world written under `root`/world, the stage's `tiny` config on it (`args`: more of its
  arguments, e.g. "lm=paligemma") -> (world dir, config, the world's vocabulary size)."""
  w = os.path.join(root, "world")
  world.synth(steps_lib.load_config("data/synthetic.py", "tiny"), w)
  config = steps_lib.load_config(CONFIG, f"tiny,{args + ',' if args else ''}world={w}")
  return w, config, stage_input.vocabulary(config.data).vocab_size


def assert_vision_moved_lm_kept(imported: dict, trained: dict, lm_prefix: str) -> None:
  """Flat {path: array} before and after stage 1 from imported weights: the image encoder trained
  (more than 10 of its leaves moved), every leaf under `lm_prefix` exactly as imported."""
  moved = [k for k in imported if k.startswith("video_encoder/image/")
           and not np.array_equal(imported[k], trained[k])]
  assert len(moved) > 10
  for key in imported:
    if key.startswith(lm_prefix):
      np.testing.assert_array_equal(imported[key], trained[key], err_msg=key)
