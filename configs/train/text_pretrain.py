"""Stage -1: text-only pre-training of the language model (the stand-in for UL2's pre-training).

Every caption, answer and instruction answer of the world's training splits, each after the prompt
it answers, over one blank frame (vidistill/train/stage_input.py, data.source="text"). Without it a
decoder frozen in stage 1 cannot emit motion words it never learnt (issue 8). The vision side is
frozen: a blank frame teaches it nothing.

    vidistill train --config configs/train/text_pretrain.py:tiny,world=/tmp/w --workdir /tmp/lm
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("text_pretrain", arg)
  return sc.stage_config(
      arg, stage="text_pretrain", model=sc.vlm_model(arg.variant),
      data=dict(source="text", kind="instruction",
                text_splits="image_text,labeled,narratives"),  # Splits whose sentences are read.
      frozen=("video_encoder/.*", "visual_projection/.*"))
