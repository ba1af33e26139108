"""The synthetic video world: the embedded default data of vidistill (docs/synthetic_world.md).

    vidistill data synth --config configs/data/synthetic.py:tiny --workdir /tmp/world
    vidistill data synth --config configs/data/synthetic.py:default,seed=3 --workdir /tmp/world3 \
        --config.num_frames=8

Variants: `tiny` (tests: a few clips per split, seconds), `quick` (hundreds, a CPU experiment),
`default` (thousands: the miniature reproduction), `large`. Arguments: `seed=`, `res=`, `frames=`
override the variant's seed / resolution / frame count; anything else via `--config.key=value`.
"""
import ml_collections

from vidistill import config_args
from vidistill.data.synthetic import config_check
from vidistill.data.synthetic import vocab

# Per variant: split sizes (clips; images for image_text), shard counts, resolution, frames.
_VARIANTS = {
    "tiny": dict(
        splits=dict(image_text=8, labeled=6, narratives=4, pool=10, test=6, qa=4),
        num_shards=dict(image_text=1, labeled=1, narratives=1, pool=2, test=1, qa=1),
        resolution=32, num_frames=8),
    "quick": dict(
        splits=dict(image_text=1000, labeled=300, narratives=200, pool=1000, test=200, qa=200),
        num_shards=dict(image_text=2, labeled=2, narratives=1, pool=4, test=1, qa=1),
        resolution=32, num_frames=8),
    "default": dict(
        splits=dict(image_text=5000, labeled=2000, narratives=1000, pool=10000, test=500, qa=500),
        num_shards=dict(image_text=4, labeled=4, narratives=2, pool=16, test=2, qa=2),
        resolution=48, num_frames=16),
    "large": dict(
        splits=dict(image_text=50000, labeled=20000, narratives=10000, pool=200000, test=1000,
                    qa=1000),
        num_shards=dict(image_text=16, labeled=16, narratives=8, pool=128, test=4, qa=4),
        resolution=64, num_frames=16),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """`variant[,seed=N][,res=PX][,frames=T]`, e.g. "tiny" or "default,seed=3"."""
  arg = config_args.parse_arg(arg, variant="default", seed=0, res=0, frames=0)
  variant = config_args.pick_variant(arg.variant, _VARIANTS, "configs/data/synthetic.py")
  config = ml_collections.ConfigDict()
  config.variant = arg.variant          # Which preset the sizes below come from (recorded only).
  config.seed = arg.seed                # Root seed: clip seeds derive from (seed, split, index).

  # What a clip looks like.
  config.resolution = arg.res or variant["resolution"]      # Frame height = width, pixels (even).
  config.num_frames = arg.frames or variant["num_frames"]   # Frames per clip; 2 halves of actions.
  config.fps = 8.0                      # Frame rate of the written videos (clip = frames / fps s).
  config.video_codec = "h264"           # Codec of DIR/videos/<split>/*.mp4 ("h264" or "mpeg4").
  config.vocab_size = 512               # SentencePiece pieces of DIR/vocab.model (256 are bytes).
  config.media_splits = config_check.SPLITS  # Splits written as media files too (videos/*.mp4,
                                        # images/*.png); every split has shards. The pipeline
                                        # trains from shards and evaluates from videos, so it
                                        # keeps only test and qa (mp4 encoding: ~1/3 of a clip).
  config.shard_frames_encoding = "raw"  # Frames in shards: "raw" (fastest) or "png" (lossless too,
                                        # ~10x smaller at 48 px, ~4 ms more per clip to write).

  # Splits: image_text = single frames + frame captions (the image VLM's pre-training); labeled =
  # gold + short captions; narratives = VidLN-style narratives (instruction synthesis); pool =
  # unlabeled, alt-text only; test = retrieval / captioning with distractors; qa = questions.
  config.splits = ml_collections.ConfigDict(variant["splits"])          # Clips (images) per split.
  config.num_shards = ml_collections.ConfigDict(variant["num_shards"])  # Shard files per split.

  # What a scene may contain (names from vidistill/data/synthetic/vocab.py).
  config.min_objects = 1                # Fewest objects in a clip.
  config.max_objects = 3                # Most objects in a clip (never two of a shape or colour).
  config.shapes = vocab.SHAPES          # Shapes; all differ by >= 20% of their pixels at min size.
  config.colours = tuple(vocab.COLOURS)  # Colours; >= 115 apart in RGB and from any background.
  config.sizes = ml_collections.ConfigDict(vocab.SIZES)  # Size word -> radius / frame width.
  config.actions = vocab.ACTIONS        # Actions objects may do (spin: only shapes that show it).
  config.two_action_prob = 0.6          # Chance an object does two actions in order, not one.
  config.backgrounds = vocab.BACKGROUNDS  # Background kinds: plain grey, checker, smooth noise.

  # Text.
  config.gold_variants = 3              # Gold captions per clip: canonical + paraphrases (1..3).
  config.short_caption = "any"          # Short captions (labeled split): "any" = a random object's
                                        # action, moves undirected ("a circle is moving"); "first"
                                        # = the clip's first event, direction said ("... moving
                                        # left"): the moment a spoken caption would name.
  config.alt_text = ml_collections.ConfigDict(dict(
      wrong_attribute_prob=0.25,        # Chance each colour / shape word of alt-text is wrong.
      drop_object_prob=0.35,            # Chance alt-text leaves an object out.
      junk_prob=0.5,                    # Chance of (each further) junk tag ("hd", "stock footage").
  ))
  config.questions_per_clip = 4         # QA split: questions per clip (of different kinds).
  config.distractor_fraction = 0.5      # Test split: share of clips that are another test clip
                                        # with other motion or order (hard negatives).
  config_check.validate(config)
  return config
