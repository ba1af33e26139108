"""`vidistill pipeline`: the whole method end to end, and its report (docs/pipeline.md).

    vidistill pipeline --config configs/pipeline.py:quick --workdir /tmp/vd_quick
    vidistill pipeline --config configs/pipeline.py:default --workdir /tmp/vd --seeds 3
    vidistill pipeline --config configs/pipeline.py:paper --workdir /tmp/vd_paper --dry_run

Variants: `quick` (every step on a very small world: the end-to-end test, a few minutes on 2 CPU
cores), `default` (the miniature reproduction of the paper's claims, sized for 15 minutes a seed on
2 CPU cores; measured run times in docs/experiments.md), `paper` (the real recipe: imported ViT-G/14 + UL2-3B, SMiT, VidLN, VideoCC + InternVid, MSR-VTT;
cannot run here, `--dry_run` resolves it). Arguments: `seeds=` (repeats with seeds 0..N-1),
`world=` (use an existing world directory instead of making one). Anything else via
`--config.key=value`.
"""
import ml_collections

from vidistill import config_args
from vidistill.train import stage_configs as sc

_STAGES = ("text_pretrain", "image_pretrain", "visual_adaptation", "language_adaptation")

# Per variant. Stage entries: (steps, batch[, peak lr]). `world`: configs/data/synthetic.py argument.
_VARIANTS = {
    "quick": dict(
        world="quick", world_splits=dict(image_text=400, labeled=160, narratives=80, pool=320,
                                         test=64, qa=48),
        stage_variant="quick", text_splits="labeled",
        stages=dict(text_pretrain=(60, 32), image_pretrain=(60, 32), visual_adaptation=(60, 32),
                    language_adaptation=(40, 32)),
        de_steps=40, de_batch=32, de_variant="quick", fractions=(0.5, 1.0),
        caption_batch=32, caption_unit=64, caption_decode_len=32, eval_max=48, eval_batch=16,
        samples=3),
    "default": dict(
        # 6,000 labeled clips, not 1,500: seen 34 times, 1,500 were memorised (docs/pipeline.md).
        world="quick", world_splits=dict(image_text=2000, labeled=6000, narratives=500,
                                         pool=3000, test=300, qa=200),
        # Every record holds every sentence kind and 300 x 64 sentences are read: the labeled
        # split's would only add tokenising time (text_pretrain 214 s with them, 81 s without).
        stage_variant="default", text_splits="image_text,narratives",
        stages=dict(text_pretrain=(300, 64), image_pretrain=(400, 64),
                    # Stage 2 at 5x the stage configs' lr 2e-3: first action 13.0 -> 18.7 on
                    # one seed, same stage 1 (docs/experiments.md, 2026-12-05 a). Stage 1 at 1e-2
                    # with the LM frozen lost its object words (object F1 3%): it keeps 2e-3.
                    # Stage 1 gets most of the 15 minutes: with the LM trained (the ablation)
                    # first action rises with its steps (17 -> 36 from 800 to 2,400); a longer
                    # stage 2 did not raise it (docs/experiments.md, 2026-12-06 g).
                    visual_adaptation=(2000, 64), language_adaptation=(400, 64, 1e-2)),
        de_steps=200, de_batch=64, de_variant="default", fractions=(0.25, 0.5, 1.0),
        caption_batch=64, caption_unit=500, caption_decode_len=40, eval_max=0, eval_batch=64,
        samples=4),
    # The real recipe (paper Sec. 3-4): PaLI-3's ViT-G/14 + UL2-3B imported, not pre-trained here.
    "paper": dict(
        world="", world_splits={}, stage_variant="paper", text_splits="",
        stages=dict(text_pretrain=(0, 0), image_pretrain=(0, 0),
                    visual_adaptation=(20_000, 256), language_adaptation=(20_000, 256)),
        de_steps=100_000, de_batch=1024, de_variant="paper", fractions=(0.125, 0.25, 0.5, 1.0),
        # Clips a host per captioner call: what fits a v5e-256 (configs/caption/pseudo_caption.py).
        caption_batch=8, caption_unit=1024, caption_decode_len=64, eval_max=0, eval_batch=64,
        samples=8),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """`variant[,seeds=N][,world=DIR]`, e.g. "quick" or "default,seeds=3"."""
  arg = config_args.parse_arg(arg, variant="default", seeds=1, world="")
  v = config_args.pick_variant(arg.variant, _VARIANTS, "configs/pipeline.py")
  c = ml_collections.ConfigDict()
  c.variant = arg.variant               # Which preset the sizes below come from (recorded).
  c.seeds = arg.seeds                   # Training repeats (seeds 0..N-1) sharing one world.
  c.workers = 2                         # Steps run at once, each in its own process (1: one
                                        #   after the other, in this process). Steps that do
                                        #   not read each other's outputs overlap.
  c.compile_cache = "jax_cache"         # XLA programs kept on disk (relative: in the workdir;
                                        #   "" = off): same-shape steps compile once.

  # Step 1: the synthetic world (configs/data/synthetic.py), made in <workdir>/world.
  c.world = ml_collections.ConfigDict(dict(
      dir=arg.world,                    # An existing world to use ("" = make <workdir>/world).
      config_arg=v["world"],            # configs/data/synthetic.py argument ("" = real data).
      splits=ml_collections.ConfigDict(v["world_splits"]),  # Split sizes over the preset's.
      num_workers=2,                    # Processes rendering clips.
      # Splits also written as mp4 / png: the training steps read shards, the evaluations read
      # the test and QA videos (as a real data set's), so the rest only cost encoding time.
      media_splits=("test", "qa"),
      short_caption=v.get("short_caption", ""),  # configs/data/synthetic.py's ("" = its own).
  ))

  # Steps 2-4: the VLM stages (configs/train/<stage>.py), each initialised from the previous one.
  c.stage_variant = v["stage_variant"]  # Variant of configs/train/*.py (model sizes, lr).
  c.stages = ml_collections.ConfigDict()
  for name in _STAGES:
    steps, batch, *rest = v["stages"][name]
    lr = rest[0] if rest else 0.0
    c.stages[name] = ml_collections.ConfigDict(dict(
        steps=steps,                    # Training steps (0: the stage is skipped; paper imports).
        batch=batch,                    # Global batch.
        lr=lr,                          # Peak learning rate (0: the stage config's).
    ))
  c.vlm = ml_collections.ConfigDict(dict(
      # The language model: "t5" (the paper's encoder-decoder) or "paligemma" (a decoder-only
      # Gemma with a prefix-LM mask, PaliGemma-shaped; configs/train/*.py lm=).
      lm="t5",
      vit=v.get("vit", ""),             # ViT size (vidistill/models/vit.py) over the stage
                                        #   variant's ("" = keep it), in every VLM stage.
      t5=v.get("t5", ""),               # T5 size (vidistill/models/t5.py SIZES), likewise.
      gemma="",                         # Gemma size (vidistill/models/gemma.py SIZES), likewise.
  ))
  c.text_splits = v["text_splits"]      # World splits whose sentences text_pretrain reads.
  c.lm_unfrozen_ablation = True         # Also stage 1 with the LM trained (paper's motivation).

  # Step 5: pseudo-captioning of the pool (configs/caption/pseudo_caption.py).
  c.caption = ml_collections.ConfigDict(dict(
      batch_size=v["caption_batch"],    # Clips per captioner call.
      unit_size=v["caption_unit"],      # Clips per committed work unit.
      max_decode_len=v["caption_decode_len"],  # Most tokens in a pseudo-caption.
      frame_frames=1,                   # Frames the image VLM sees for "per-frame" captions.
  ))

  # Step 6: dual encoders (configs/train/dual_encoder.py), one per caption source and pool size.
  c.dual_encoder = ml_collections.ConfigDict(dict(
      variant=v["de_variant"],          # Variant of configs/train/dual_encoder.py.
      steps=v["de_steps"],              # Training steps of every run.
      batch=v["de_batch"],              # Global batch (contrastive: the negatives per step).
      sources=("alt_text", "frame", "pseudo", "gold"),  # Caption sources on the whole pool.
      scaling_sources=("pseudo", "alt_text"),           # Sources of the scaling curve.
      fractions=v["fractions"],         # Pool fractions of the scaling curve (nested subsets).
  ))

  # Step 7: evaluation (configs/eval/*.py) on the world's held-out test and QA splits.
  c.eval = ml_collections.ConfigDict(dict(
      max=v["eval_max"],                # Records per evaluator (0 = all).
      batch=v["eval_batch"],            # Clips per model call.
  ))
  c.report = ml_collections.ConfigDict(dict(
      samples=v["samples"],             # Held-out clips shown with every model's caption.
      margin_stds=1.0,                  # A claim holds when its margin exceeds this many times
                                        #   the larger std of the two rows compared.
  ))
  if arg.variant == "paper":
    c.paper = ml_collections.ConfigDict(dict(
        data="/data",                   # Root of the downloaded data sets (docs/datasets.md).
        # What the VLM's first stage imports (configs/train: stage_configs.PAPER_IMPORTS).
        vit_import=sc.PAPER_IMPORTS["vlm"]["import_vit"].partition(":")[2],  # ViT-G/14 npz.
        lm_import=sc.PAPER_IMPORTS["vlm"]["import_lm"].partition(":")[2],    # UL2-3B (HF dir).
        stage1="smit/train_set.txt",                   # Spoken Moments in Time (visual adapt.).
        stage2="vidln/OVIS_train.jsonl",               # VidLN narratives (language adapt.).
        pool=("videocc/video_cc_public.csv", "internvid/InternVid-10M-FLT.jsonl"),
        eval="msrvtt/MSRVTT_data.json",                # MSR-VTT retrieval / captioning.
        mesh_devices=256,                              # Abstract mesh of the dry run (v5e-256).
    ))
  return c
