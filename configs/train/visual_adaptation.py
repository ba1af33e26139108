"""Stage 1, visual adaptation (paper Sec. 3.1): video-caption data, the language model frozen,
the vision encoder (and its projection) trained.

    vidistill train --config configs/train/visual_adaptation.py:tiny,world=/tmp/w,init=/tmp/s0 \
        --workdir /tmp/s1
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("visual_adaptation", arg)
  return sc.stage_config(
      arg, stage="visual_adaptation", model=sc.vlm_model(arg.variant),
      data=dict(split="labeled", kind="caption", caption_key="gold_captions"),
      frozen=("t5/.*",))  # The LM is not trained: it keeps the image VLM's language.
