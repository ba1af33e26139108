"""Stage 2, language adaptation (paper Sec. 3.2): instruction data synthesised from narratives
(detailed descriptions, temporal / causal / counting questions), the vision encoder frozen.

    vidistill train --config configs/train/language_adaptation.py:tiny,world=/tmp/w,init=/tmp/s1 \
        --workdir /tmp/s2
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("language_adaptation", arg, lm="t5")  # lm=paligemma: a Gemma decoder
  return sc.stage_config(
      arg, stage="language_adaptation", model=sc.vlm_model(arg.variant, arg.lm),
      data=dict(split="narratives", kind="instruction", instructions_per_video=4),
      frozen=("video_encoder/.*", "visual_projection/.*"))  # Vision stays as stage 1 left it.
