"""Stage 0: the image VLM, trained on single frames + frame captions (the image-text split).

It stands in for the pretrained image VLM (PaLI-3) on the synthetic world; with real weights it is
replaced by weight import (docs/models_vision.md, docs/models_language.md), so the paper recipe
has no image_pretrain step. Its `paper` variant trains the whole VLM (4.7 B parameters): compiled
for v5e:16x16 it needs 16.5 GiB a chip (13.0 of activations), more than a v5e chip's 16; it is for
a v5p pod (95 GiB a chip; docs/scaling.md).

    vidistill train --config configs/train/image_pretrain.py:tiny,world=/tmp/w --workdir /tmp/s0
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("image_pretrain", arg, lm="t5")  # lm=paligemma: a Gemma decoder
  return sc.stage_config(
      arg, stage="image_pretrain", model=sc.vlm_model(arg.variant, arg.lm),
      data=dict(split="image_text", kind="caption", caption_key="caption"),
      lr_scale=1.0)
