"""What the stage configs (configs/train/*.py) share: arguments, model sizes, the data block.

    arg = parse_stage_arg("visual_adaptation", arg)     # in a config file's get_config(arg)
    config = stage_config(arg, model=vlm_model(arg.variant), data=dict(split="labeled", ...))

Arguments of every stage: `variant` (tiny | quick | default | paper), `world=` (the synthetic
world directory), `init=` (the previous stage's workdir), `steps=`, `seed=`, `batch=`; the dual
encoder adds `source=` (its caption source) and `fraction=` (of the pool). The rest via
`--config.key=value`. Model sizes are names decoded by the model modules (vit "mu/8", t5 "tiny").
"""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from vidistill import config_args
from vidistill.train import config as train_config

VARIANTS = ("tiny", "quick", "default", "paper")

# Per variant: steps, global batch, peak lr, warmup, frames/res the world is made with.
_RUN = {
    "tiny": dict(steps=4, batch=4, lr=1e-3, warmup=1, log_every=1, checkpoint_every=2),
    "quick": dict(steps=150, batch=32, lr=3e-3, warmup=20, log_every=25, checkpoint_every=50),
    "default": dict(steps=600, batch=64, lr=2e-3, warmup=50, log_every=50, checkpoint_every=200),
    # Paper scale (PaLI-3 fine-tuning recipes): cannot run here; `--dry_run` resolves it.
    "paper": dict(steps=20_000, batch=256, lr=1e-4, warmup=1000, log_every=100,
                  checkpoint_every=1000),
}


# Public checkpoints a paper-scale stage starts from when it has no `init=` (a previous stage):
# PaLI-3's image encoder (a SigLIP ViT-G/14, big_vision npz) and UL2-3B (Hugging Face
# safetensors) for the VLM; SigLIP So400m/14 (both towers, one big_vision npz) for the dual
# encoder. docs/checkpoints.md says where to get them; `vidistill pipeline --dry_run` checks that
# they exist.
PAPER_IMPORTS = {
    "vlm": dict(import_vit="big_vision:/ckpt/pali3/vit_g14.npz",
                import_lm="t5_hf:/ckpt/ul2_3b"),
    "dual_encoder": dict(import_vit="big_vision:/ckpt/siglip/so400m14_224.npz",
                         import_lm="big_vision:/ckpt/siglip/so400m14_224.npz"),
    # PaliGemma 2 (SigLIP So400m/14 + Gemma 2 2B), Hugging Face save_pretrained directory: the
    # whole image VLM at once (a big_vision npz works too: "paligemma:/ckpt/....npz").
    "paligemma": dict(import_vlm="paligemma_hf:/ckpt/paligemma2-3b-pt-224"),
}
# The paper-scale PaliGemma's tokenizer (Gemma's SentencePiece + location/segmentation tokens).
PALIGEMMA_TOKENIZER = "/ckpt/paligemma2-3b-pt-224/tokenizer.model"

# The language model of each VLM kind, as a parameter pattern (what stage 1 freezes).
LM_PARAMS = {"vlm": "t5/.*", "paligemma": "llm/.*"}
LMS = {"t5": "vlm", "paligemma": "paligemma"}  # stage argument `lm=` -> model.kind


def parse_stage_arg(stage: str, arg: str | None, **extra: Any) -> ml_collections.ConfigDict:
  """`variant[,world=DIR][,init=DIR][,steps=N][,seed=N][,batch=B]` (+ the stage's `extra`)."""
  parsed = config_args.parse_arg(arg, variant="default", world="", init="", steps=0, seed=0,
                                 batch=0, **extra)
  config_args.pick_variant(parsed.variant, dict.fromkeys(VARIANTS), f"configs/train/{stage}.py")
  return parsed


def _layers(paper: bool) -> dict[str, Any]:
  """How the transformer stacks run. Paper scale: scanned (compiled once, not once per layer) and
  each layer rematerialised, so activations of 48 ViT-G blocks and 48 UL2 layers fit a v5e chip's
  16 GiB (docs/scaling.md, compiled for v5e:16x16). The CPU miniatures: unrolled, nothing
  recomputed (2-layer stacks: scanning buys nothing there)."""
  return dict(scan=paper,               # nn.scan over the blocks (models/layer_stack.py).
              remat_policy="full" if paper else "none")  # none | full | dots.


def vlm_model(variant: str, lm: str = "t5") -> ml_collections.ConfigDict:
  """The video VLM: SigLIP-style ViT per frame -> video tokens -> T5/UL2 encoder-decoder
  (`lm="t5"`, the paper) or a decoder-only Gemma with a prefix-LM mask (`lm="paligemma"`)."""
  config_args.pick_variant(lm, dict.fromkeys(LMS), "the stage argument lm")
  # Patch 16 on the world's 32 px frames: 2x2 tokens a frame. A throwaway prototype measured
  # patch 8 3.5x slower a step and no better for the LM reading the tokens.
  vit = {"tiny": "mu/8", "quick": "nu/16", "default": "nu/16", "paper": "G/14"}[variant]
  t5 = {"tiny": "tiny", "quick": "tiny", "default": "tiny", "paper": "ul2_3b"}[variant]
  m = ml_collections.ConfigDict()
  m.kind = "vlm"                        # vidistill/models/build.py: the PaLI-style video VLM.
  paper = variant == "paper"
  m.vit = ml_collections.ConfigDict(dict(
      variant=vit,                      # ViT size/patch (vidistill/models/vit.py sizes).
      pool_type="none",                 # The LM reads the patch tokens, not a pooled vector.
      **_layers(paper),
  ))
  m.video = ml_collections.ConfigDict(dict(
      max_frames=16,                    # Temporal embedding table length (>= frames per clip).
      temporal_embedding=True,          # Learned, zero at init: an image model stays unchanged.
      # Patch embedding of frame differences, zero at init (video_encoder.py). Off: in the
      # default pipeline it changed neither first-action accuracy nor CIDEr-D and cost ~10% of
      # a stage-1 step (docs/pipeline.md); the paper's ViT-G has none either.
      frame_difference=False,
      spatial_tokens=None if variant == "paper" else 4,  # Tokens per frame (None: whole grid).
      temporal_pool=1,                  # Average this many consecutive frames' tokens.
  ))
  if lm == "paligemma":
    return _paligemma(m, variant)
  m.t5 = ml_collections.ConfigDict(dict(
      variant=t5,                       # T5/UL2 size (vidistill/models/t5.py SIZES/ALIASES).
      remat_policy=_layers(paper)["remat_policy"],
      scan_layers=_layers(paper)["scan"],
  ))
  m.z_loss = 1e-4                       # PaLM's z-loss on the decoder logits (0: off).
  return m


def _paligemma(m: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """PaliGemma-shaped: the same video encoder in front of a Gemma (models/paligemma.py)."""
  m.kind = "paligemma"                  # vidistill/models/build.py: prefix-LM decoder-only VLM.
  if variant == "paper":
    m.vit.variant = "So400m/14"         # PaliGemma's SigLIP.
  m.gemma = ml_collections.ConfigDict(dict(
      # Gemma size (vidistill/models/gemma.py SIZES); the miniature's has T5 tiny's width.
      variant={"tiny": "gemma_tiny", "paper": "gemma2_2b"}.get(variant, "gemma_mini"),
      scan_layers=variant == "paper",   # nn.scan over the layers (compile once at 26 layers).
  ))
  paper = variant == "paper"
  m.prompt = ml_collections.ConfigDict(dict(
      # Gemma's BOS before the prompt; None for a vocabulary without one (the synthetic world's).
      bos_id=2 if paper else None,
      # The token that ends the prompt and starts the answer: "\n" (108) in PaliGemma's
      # vocabulary; the EOS (1) in the world's.
      start_id=108 if paper else 1,
  ))
  m.z_loss = 1e-4                       # PaLM's z-loss on the decoder logits (0: off).
  return m


def dual_encoder_model(variant: str) -> ml_collections.ConfigDict:
  """The video-text dual encoder: ViT per frame + temporal pooling, text transformer."""
  m = ml_collections.ConfigDict()
  m.kind = "dual_encoder"               # vidistill/models/build.py.
  m.embed_dim = {"tiny": 16, "quick": 64, "default": 64, "paper": 1152}[variant]  # Shared width.
  m.vit = ml_collections.ConfigDict(dict(
      variant={"tiny": "mu/8", "quick": "nu/16", "default": "nu/16", "paper": "So400m/14"}[variant],
      pool_type="map" if variant == "paper" else "gap",  # Per-frame pooling (MAP as SigLIP).
      **_layers(variant == "paper"),
  ))
  m.text = ml_collections.ConfigDict(dict(
      variant={"tiny": "mu", "quick": "nu", "default": "nu", "paper": "So400m"}[variant],
      max_len=64,                       # Longest caption in tokens (positions table).
      pool_type="last",                 # Pool the last real token (EOS).
      **_layers(variant == "paper"),
  ))
  # The miniature's test set holds clips that differ only in the order or kind of motion: a
  # frame mean cannot tell them apart, a temporal transformer over the frame embeddings can.
  m.temporal_type = "transformer" if variant in ("quick", "default") else "mean"
  # SigLIP's sigmoid loss (logit bias -10) is tuned for batches of thousands; at the CPU
  # miniature's batch of 64 the softmax (CLIP) loss learns in the few hundred steps it gets.
  m.loss = "softmax" if variant in ("quick", "default") else "sigmoid"
  m.temperature_init = 2.302585         # log(10), SigLIP's init of the log-temperature.
  m.bias_init = -10.0                   # SigLIP's logit bias init (ignored by softmax).
  return m


def stage_config(arg: ml_collections.ConfigDict, *, stage: str, model: ml_collections.ConfigDict,
                 data: Mapping[str, Any], frozen: tuple[str, ...] = (),
                 lr_scale: float = 1.0) -> ml_collections.ConfigDict:
  """The trainer's schema (vidistill/train/config.py) filled for one stage of the method."""
  run = _RUN[arg.variant]
  c = train_config.base_config()
  c.stage = stage                       # Which stage of the method (recorded).
  c.variant = arg.variant               # Which preset the sizes come from (recorded).
  c.seed = arg.seed
  c.total_steps = arg.steps or run["steps"]
  c.batch_size = arg.batch or run["batch"]
  c.optim.lr = run["lr"] * lr_scale
  c.optim.weight_decay = 1e-4
  c.schedule.warmup_steps = min(run["warmup"], c.total_steps)
  c.log_every = run["log_every"]
  c.checkpoint_every = run["checkpoint_every"]
  c.keep_checkpoints = 2
  c.frozen = frozen
  c.eval_config = ""                    # Eval suite run every eval_every steps (and at the end):
                                        #   "configs/eval/retrieval.py:tiny,data=<world>"; "" = none.
  c.init.checkpoint = arg.init          # The previous stage's workdir ("" for the first stage).
  c.init.strict = True
  if arg.variant == "paper" and not arg.init:
    c.init.update(PAPER_IMPORTS[model.kind])
  if arg.variant == "paper" and model.kind == "paligemma":
    data = dict(dict(vocab=PALIGEMMA_TOKENIZER, prompt="caption en"), **data)
  c.model = model

  d = ml_collections.ConfigDict()
  d.source = "world"                    # "world" (synthetic), "annotations" (a real data set) or
                                        #   "clips" (`vidistill data convert` shards, data.clips).
  d.world = arg.world                   # The synthetic world directory (vidistill data synth).
  d.vocab = ""                          # SentencePiece model; "" = <world>/vocab.model.
  d.split = "labeled"                   # World split to train on.
  d.kind = "caption"                    # caption | instruction | contrastive (seqio task kind).
  d.caption_key = "gold_captions"       # Field holding the text (str or list: one drawn per pass).
  d.prompt = "caption en:"              # Encoder prompt of caption tasks.
  d.captions_dir = ""                   # Pseudo-caption job output to train on ("" = none).
  d.captions_prompt = ""                # Which of its prompts ("" = all).
  d.fraction = 1.0                      # Fraction of the split's clips used (nested subsets).
  d.fraction_seed = 0                   # Seed of that subset.
  d.instructions_per_video = 4          # Instruction kind: synthesised pairs per clip.
  d.passes = 1                          # Caption draws per clip held in memory.
  d.seq_lengths = ml_collections.ConfigDict({"inputs": 32, "targets": 48})  # Token lengths.
  d.reader = ""                         # source="annotations": annotations.READERS name,
  d.annotations = ""                    #   its annotation file,
  d.video_root = ""                     #   and the video directory.
  d.clips = ""                          # source="clips": the shards' prefix or glob.
  d.num_frames = 16 if arg.variant == "paper" else 8   # source="annotations": frames per clip.
  d.resolution = 224 if arg.variant == "paper" else 32  # source="annotations": frame side (px).
  d.seed = arg.seed                     # Seed of caption draws and instruction synthesis.
  d.shards = ""                         # ArrayRecord shards of this stage's examples to stream
                                        #   (`vidistill train --write_shards PREFIX`); "" = none.
  # True: every example held in host memory (the miniature: fastest); False: streamed from
  # data.shards by Grain, never held whole (the paper scale); None: stream when data.shards is set.
  d.in_memory = ml_collections.FieldReference(False if arg.variant == "paper" else None,
                                              field_type=bool)
  d.read_threads = 4                    # Streaming: threads reading and parsing records.
  d.update(dict(data))
  c.data = d
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
  if arg.variant == "paper":
    # For a v5e-256 pod (data 16 x fsdp 16), with scanned, rematerialised layers: compiled for
    # v5e:16x16, visual adaptation peaks at 7.5, language adaptation at 13.4, the dual encoder at
    # 1.8 of a chip's 16 GiB; image_pretrain (everything trained: 16.5 GiB) needs a v5p pod
    # (docs/scaling.md).
    c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 16, "model": 1})
    c.dtype = "bfloat16"
  return c
