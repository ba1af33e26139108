"""The synthetic world's vocabularies: shapes, colours, sizes, actions, backgrounds and their words.

Every attribute a caption names has to be visible at the clip's resolution (a 32 px prototype whose
square had half-side 0.85 r was read as a circle 38% of the time), so:
- shapes differ by large pixel areas (full square vs disc vs triangle vs plus vs ring vs bar; the
  pixel-overlap test in tests/data/test_synthetic_render.py bounds their IoU at the smallest size);
- colours are saturated and >= 115 apart in RGB from each other and from every background grey;
- sizes are radii as a fraction of the frame width with a clear ratio (1.75);
- only shapes whose rotation changes their silhouette may spin.
"""
from __future__ import annotations

import math

# Object colours (RGB). Saturated or white, so no plain/textured background grey (20..120) is near.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (35, 185, 55),
    "blue": (40, 85, 235),
    "yellow": (245, 225, 40),
    "magenta": (225, 55, 215),
    "cyan": (40, 215, 225),
    "white": (245, 245, 245),
}

# Background grey levels: every background pixel lies in this range (textures included).
BACKGROUND_GREY_RANGE = (20, 120)
BACKGROUNDS = ("plain", "checker", "noise")

SHAPES = ("circle", "square", "triangle", "cross", "ring", "bar")

# Rotation by this angle maps the shape onto itself; None: rotation is invisible (may not spin).
SYMMETRY_ANGLE: dict[str, float | None] = {
    "circle": None,
    "ring": None,
    "square": math.pi / 2,
    "cross": math.pi / 2,
    "triangle": 2 * math.pi / 3,
    "bar": math.pi,
}

# Half-width of the cross's arms and of the bar, and the ring's inner radius (fractions of r).
CROSS_ARM = 0.38
BAR_HALF_HEIGHT = 0.38
RING_INNER = 0.5

# Default radii (fraction of the frame width). Configs may redefine them, checked by config_check.
SIZES: dict[str, float] = {"small": 0.12, "large": 0.21}

# A shape needs at least this radius in pixels to stay distinguishable from the others.
MIN_RADIUS_PX = 3.5

ACTIONS = (
    "move_left", "move_right", "move_up", "move_down", "grow", "shrink", "spin", "bounce",
    "change_colour", "appear", "disappear", "stay_still",
)
MOVES: dict[str, tuple[float, float]] = {  # Unit direction in image coordinates (y grows down).
    "move_left": (-1.0, 0.0), "move_right": (1.0, 0.0), "move_up": (0.0, -1.0),
    "move_down": (0.0, 1.0),
}

# Motion magnitudes, as fractions of the frame (so they scale with the resolution).
MOVE_DISTANCE = 0.3     # A move covers 30% of the frame: >= 9 px at 32 px.
BOUNCE_HEIGHT = 0.22    # Peak of the hop above the resting position.
GROW_SCALE = 1.5        # Final radius / initial radius.
SHRINK_SCALE = 0.55

# Caption words. The gold caption uses the third person present ("moves left").
ACTION_PHRASE: dict[str, str] = {
    "move_left": "moves left", "move_right": "moves right", "move_up": "moves up",
    "move_down": "moves down", "grow": "grows", "shrink": "shrinks", "spin": "spins",
    "bounce": "bounces", "change_colour": "turns {colour}", "appear": "appears",
    "disappear": "disappears", "stay_still": "stays still",
}
# Paraphrases for the extra gold captions (same meaning, other words).
ACTION_PARAPHRASE: dict[str, str] = {
    "move_left": "slides to the left", "move_right": "slides to the right",
    "move_up": "slides upwards", "move_down": "slides downwards", "grow": "gets bigger",
    "shrink": "gets smaller", "spin": "rotates", "bounce": "hops up and down",
    "change_colour": "changes colour to {colour}", "appear": "shows up", "disappear": "vanishes",
    "stay_still": "does not move",
}
# Spoken-Moments-style short captions: shape only, present progressive, no direction.
SHORT_PHRASE: dict[str, str] = {
    "move_left": "is moving", "move_right": "is moving", "move_up": "is moving",
    "move_down": "is moving", "grow": "is getting bigger", "shrink": "is getting smaller",
    "spin": "is spinning", "bounce": "is bouncing", "change_colour": "is changing colour",
    "appear": "is appearing", "disappear": "is disappearing", "stay_still": "is sitting still",
}

# Short captions that say the direction too (config.short_caption = "first"): "is moving left".
SHORT_PHRASE_DIRECTED: dict[str, str] = {
    **SHORT_PHRASE, "move_left": "is moving left", "move_right": "is moving right",
    "move_up": "is moving up", "move_down": "is moving down"}

# Zero-shot classification class names (test_kinetics.csv labels): the action, as a gerund.
ACTION_CLASS: dict[str, str] = {
    "move_left": "moving left", "move_right": "moving right", "move_up": "moving up",
    "move_down": "moving down", "grow": "growing", "shrink": "shrinking", "spin": "spinning",
    "bounce": "bouncing", "change_colour": "changing colour", "appear": "appearing",
    "disappear": "disappearing", "stay_still": "staying still",
}

# Words that reveal motion or time; alt-text must never contain any of them.
MOTION_WORDS = frozenset(
    " ".join(list(ACTION_PHRASE.values()) + list(ACTION_PARAPHRASE.values())
             + list(SHORT_PHRASE.values())).replace("{colour}", "").split()
    + ["then", "first", "after", "before", "while", "moving", "left", "right", "up", "down",
       "upwards", "downwards"]) - {"is", "to", "the", "and", "does", "not", "colour"}

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")


def action_phrase(action: str, target_colour: str | None = None, *,
                  paraphrase: bool = False) -> str:
  """The verb phrase of an action: "moves left", "turns blue" (paraphrase: "slides to the left")."""
  table = ACTION_PARAPHRASE if paraphrase else ACTION_PHRASE
  return table[action].format(colour=target_colour or "")


def can_spin(shape: str) -> bool:
  return SYMMETRY_ANGLE[shape] is not None
