"""The synthetic video world: the embedded default data of vidistill (docs/synthetic_world.md).

Short clips of coloured shapes whose correct description needs motion and order, written in the
file formats of the real data sets, so the paper's claims can be reproduced in miniature on a CPU.

Modules, in the order data flows through them:
  vocab         shapes, colours, sizes, actions and their words
  scene         Scene / SceneObject / Event and their sampling (WorldSpec: what a config allows)
  motion        per-frame object states from the actions
  render        frames from a scene (numpy, anti-aliased)
  captions      gold / short / alt-text / frame captions, narratives, event lists
  questions     open-ended and 5-way multiple-choice questions
  distractors   test clips that differ from another only in motion or order
  clips         ids, per-clip seeds, truth records; the test split's unique-caption drawing
  export        annotation files in the real data sets' layouts
  config_check  validation of configs/data/synthetic.py
  world         writing a world directory (parallel, resumable-safe) and reading it back
"""
