"""Pseudo-captioning unlabeled videos with the adapted video VLM (docs/captioning.md).

    vidistill caption --config configs/caption/pseudo_caption.py:tiny --checkpoint CKPT \
        --input WORLD/annotations/pool_internvid.jsonl --video_root WORLD/videos/pool --output OUT
    vidistill caption --config configs/caption/pseudo_caption.py:paper,format=arrayrecord ...

Variants: `tiny` (tests: 2 videos a batch, 4 per unit, 32 px), `default` (the synthetic world's
miniature reproduction), `paper` (web-scale corpora such as InternVid / VideoCC on accelerators).
Arguments: `seed=`, `frames=`, `res=`, `format=`, `samples=`, `batch=` (clips per call and
process; 0: the variant's); anything else via `--config.key=value`.
Frames and resolution are the checkpoint's (its config.json `shapes`, written by `vidistill
train`); `frames=` / `res=` only restate them, and a value that differs is an error naming both.
"""
import ml_collections

from vidistill import config_args

_VARIANTS = {
    "tiny": dict(unit_size=4, batch_size=2, max_decode_len=16, num_workers=2, buffer=4),
    "default": dict(unit_size=256, batch_size=32, max_decode_len=32, num_workers=4, buffer=64),
    # batch_size 8 clips a host (2 a chip) is for a v5e-256 pod (64 hosts of 4 chips) at the
    # paper VLM's 16 frames of 224 px: compiled for v5e:16x16, the encoder pass peaks at 11.4 of a
    # chip's 16 GiB, 32 clips a host needed 41 GiB of temporaries (UL2's attention over 4,096
    # visual tokens); docs/scaling.md. A v5p-256 (95 GiB a chip) holds a larger `batch=`.
    "paper": dict(unit_size=1024, batch_size=8, max_decode_len=64, num_workers=16, buffer=256),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """`variant[,seed=N][,frames=T][,res=PX][,format=jsonl|tfrecord|arrayrecord][,samples=K]
  [,batch=B]`."""
  arg = config_args.parse_arg(arg, variant="default", seed=0, frames=0, res=0, format="jsonl",
                              samples=0, batch=0)
  v = config_args.pick_variant(arg.variant, _VARIANTS, "configs/caption/pseudo_caption.py")
  config = ml_collections.ConfigDict()
  config.variant = arg.variant          # Which preset the sizes below come from (recorded only).
  config.seed = arg.seed                # Sampling seeds derive from (seed, unit, batch, prompt).

  # Input.
  config.input_kind = "auto"            # --input is: "auto", "manifest", "videos" (glob/folder),
                                        # "shards" (frames already decoded).
  config.manifest_format = "auto"       # "auto" (InternVid / VideoCC / simple by content),
                                        # "simple", or any vidistill.data.annotations.READERS name.
  config.video_root = ""                # Relative paths and ids resolve here (--video_root wins).
  config.video_extensions = (".mp4", ".webm", ".mkv", ".avi")  # Tried for id-named files.
  config.allowed_schemes = ()           # Remote schemes rows may use, e.g. ("gs", "https"); a row
                                        # with any other scheme stops the job naming the row.
  config.remote_timeout_s = 60.0        # Per-video timeout for http(s) reads.
  config.on_duplicate = "error"         # A repeated id: "error" (names both rows) or "skip".

  # Work units and throughput.
  config.unit_size = v["unit_size"]     # Videos per unit: the grain of commit, restart, sharding.
  config.batch_size = arg.batch or v["batch_size"]  # Videos per captioner call (per process).
  config.pad_batches = True             # Pad a unit's last batch (one compiled batch shape).
  config.prefetch = ml_collections.ConfigDict(dict(
      num_workers=v["num_workers"],     # Threads decoding and sampling frames ahead.
      buffer=v["buffer"],               # Videos decoded ahead of the captioner (memory bound).
  ))
  config.progress_every_s = 30.0        # Seconds between progress lines / metrics rows.
  config.peer_timeout_s = 30            # Multi-process: a process silent this long is gone; the
                                        # others finish their own units and exit with code 4.

  # What the model sees and says.
  config.num_frames = arg.frames       # Frames sampled uniformly per video/window; 0: the
                                        # checkpoint's (what its model was trained on).
  config.resolution = arg.res           # Frame side, pixels (resize, centre crop); 0: the
                                        # checkpoint's.
  config.prompts = ml_collections.ConfigDict(dict(     # Name -> prompt; rows keep both; run in
      short="caption en:",                             # name order: a short caption and a
      detailed="describe the video in detail en:",     # detailed description of each video.
  ))
  config.num_samples = arg.samples or 1  # Captions per video and prompt (> 1 needs "sample").
  config.decode = ml_collections.ConfigDict(dict(
      method="sample" if arg.samples > 1 else "greedy",  # "greedy", "beam" or "sample".
      max_decode_len=v["max_decode_len"],  # Most tokens in a caption.
      beam_size=4,                      # beam: beams kept.
      length_penalty=0.6,               # beam: score / ((5 + len) / 6) ** this (GNMT alpha).
      temperature=1.0,                  # sample: logits / temperature.
      top_k=0,                          # sample: keep the k most likely tokens (0 = all).
      top_p=1.0,                        # sample: nucleus mass kept (1.0 = all).
  ))

  # Output.
  config.output_format = arg.format     # Caption files: "jsonl", "tfrecord" or "arrayrecord".
  return config
