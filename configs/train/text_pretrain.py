"""Stage -1: text-only pre-training of the language model (the stand-in for UL2's pre-training).

Every caption, answer and instruction answer of the world's training splits, each after the prompt
it answers, over one blank frame (vidistill/train/stage_input.py, data.source="text"). Without it a
decoder frozen in stage 1 cannot emit motion words it never learnt (docs/experiments.md). Every
caption is also rebuilt from a corrupted copy of itself placed before the prompt (data.denoise), as UL2
learnt from span corruption: a decoder that only writes after a prompt never lets its encoder's
content pick the words, and stage 1 has nothing else to steer it with. The vision side is
frozen: a blank frame teaches it nothing.

    vidistill train --config configs/train/text_pretrain.py:tiny,world=/tmp/w --workdir /tmp/lm
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("text_pretrain", arg, lm="t5")  # lm=paligemma: a Gemma decoder
  return sc.stage_config(
      arg, stage="text_pretrain", model=sc.vlm_model(arg.variant, arg.lm),
      data=dict(source="text", kind="instruction",
                text_splits="image_text,labeled,narratives",  # Splits whose sentences are read.
                # Caption words kept in the corrupted copy, and how far each may move.
                denoise=dict(keep=0.75, window=3.0),
                max_examples=0,  # A seeded subset of this many pairs (0 = all of them).
                # The corrupted copy + prompt in the encoder: a caption is up to ~40 tokens.
                seq_lengths={"inputs": 48, "targets": 48}),
      frozen=("video_encoder/.*", "visual_projection/.*"))
