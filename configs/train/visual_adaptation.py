"""Stage 1, visual adaptation (paper Sec. 3.1): video-caption data, the language model frozen,
the vision encoder (and its projection) trained.

    vidistill train --config configs/train/visual_adaptation.py:tiny,world=/tmp/w,init=/tmp/s0 \
        --workdir /tmp/s1
    # PaliGemma 2 weights from a local directory (HF save_pretrained; or paligemma:<file>.npz):
    vidistill train --config configs/train/visual_adaptation.py:paper,lm=paligemma \
        --config.init.import_vlm=paligemma_hf:/ckpt/paligemma2-3b-pt-224 --workdir /tmp/s1
"""
from vidistill.train import stage_configs as sc


def get_config(arg=None):
  arg = sc.parse_stage_arg("visual_adaptation", arg, lm="t5")  # lm=paligemma: a Gemma decoder
  return sc.stage_config(
      arg, stage="visual_adaptation", model=sc.vlm_model(arg.variant, arg.lm),
      data=dict(split="labeled", kind="caption", caption_key="gold_captions"),
      # The LM is not trained: it keeps the image VLM's language.
      frozen=(sc.LM_PARAMS[sc.LMS[arg.lm]],))
