"""Stage 4: the CLIP-style video-text dual encoder, trained on the unlabeled pool with one caption
source (paper Sec. 4): `source=` alt_text | gold | pseudo | frame, `fraction=` of the pool.

    vidistill train --config configs/train/dual_encoder.py:tiny,world=/tmp/w,source=alt_text \
        --workdir /tmp/de_alt
    vidistill train --config configs/train/dual_encoder.py:tiny,world=/tmp/w,source=pseudo \
        --config.data.captions_dir=/tmp/captions --workdir /tmp/de_pseudo
"""
from vidistill.config_args import pick_variant
from vidistill.train import stage_configs as sc

# Caption source -> the world field holding it (pseudo / frame: the captioning job's output dir).
SOURCES = {"alt_text": "alt_text", "gold": "gold_captions", "pseudo": None, "frame": None}


def get_config(arg=None):
  arg = sc.parse_stage_arg("dual_encoder", arg, source="alt_text", fraction=1.0)
  key = pick_variant(arg.source, SOURCES, "configs/train/dual_encoder.py (source=)")
  config = sc.stage_config(
      arg, stage="dual_encoder", model=sc.dual_encoder_model(arg.variant),
      data=dict(split="pool", kind="contrastive", caption_key=key or "", fraction=arg.fraction,
                seq_lengths={"targets": 48}))
  config.caption_source = arg.source    # Recorded: which captions the encoder learnt from.
  return config
