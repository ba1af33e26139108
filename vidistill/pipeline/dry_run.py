"""`vidistill pipeline --dry_run`: the pipeline's every config resolved, its models' shapes
(jax.eval_shape, nothing allocated), their parameter shardings on an abstract mesh of the paper's
size, and the data paths the run would read (listed with whether they exist here).
"""
from __future__ import annotations

import os
from typing import Any

import ml_collections

from vidistill.pipeline import layout
from vidistill.pipeline import steps as steps_lib

# The paper's stages on real data (paper Sec. 3-4): stage -> (config, data section).
_PAPER_STAGES = {
    "visual_adaptation": ("train/visual_adaptation.py", dict(
        source="annotations", reader="smit", kind="caption", split="train")),
    "language_adaptation": ("train/language_adaptation.py", dict(
        source="annotations", reader="vidln", kind="caption", split="train")),
    "dual_encoder": ("train/dual_encoder.py", dict(
        source="annotations", reader="videocc", kind="contrastive", split="train")),
}


def _abstract_shardings(config: ml_collections.ConfigDict, devices: int) -> dict[str, Any]:
  """Parameter shardings of the stage's model on an abstract mesh of `devices` (no devices)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import partitioning  # pylint: disable=g-import-not-at-top
  from vidistill.models import trained as trained_lib  # pylint: disable=g-import-not-at-top
  shape = mesh_lib.resolve_mesh_shape(dict(config.mesh), devices)
  mesh = jax.sharding.AbstractMesh(tuple(shape.values()), tuple(shape.keys()))
  model = build_lib.build(config.model, vocab_size=32_128, dtype=config.dtype)
  batch = trained_lib.example_batch(config, int(config.data.num_frames), int(config.data.resolution))
  boxed = jax.eval_shape(model.init, jax.random.key(0), batch)
  shardings = partitioning.param_shardings(boxed, mesh)
  leaves = jax.tree.leaves(partitioning.unbox(boxed))
  specs = jax.tree.leaves(shardings, is_leaf=lambda x: hasattr(x, "spec"))
  largest = 0
  for leaf, sharding in zip(leaves, specs):
    parts = 1
    for axes in sharding.spec:
      for a in ((axes,) if isinstance(axes, str) else (axes or ())):
        parts *= shape[a]
    largest = max(largest, int(np.prod(leaf.shape)) // parts)
  per_device = sum(int(np.prod(l.shape)) * l.dtype.itemsize for l in leaves)
  sharded = sum(1 for s in specs if any(x is not None for x in s.spec))
  return {"mesh": shape, "sharded_parameters": sharded, "parameters_total": len(leaves),
          "largest_shard_elements": largest,
          "parameter_gib_unsharded": round(per_device / 2**30, 2)}


def check(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Resolves the variant's configs and model shapes; returns what it found (printed as JSON)."""
  from vidistill.train import stage as train_stage_lib  # pylint: disable=g-import-not-at-top
  out: dict[str, Any] = {"variant": config.variant, "steps": [s.name for s in
                                                              steps_lib.build(config)]}
  paper = config.get("paper")
  stages: dict[str, Any] = {}
  if paper is None:
    # A synthetic-world variant: its stage configs resolve; shapes need the world's vocabulary,
    # so the default T5 vocabulary size stands in.
    for stage in layout.VLM_STAGES:
      s = config.stages[stage]
      cfg = layout.load_config(f"train/{stage}.py", f"{config.stage_variant},steps="
                                  f"{max(1, int(s.steps))},batch={max(1, int(s.batch))}")
      cfg.data.source = "annotations"
      stages[stage] = train_stage_lib.dry_run(cfg)
    out["stages"] = stages
    return out
  root = paper.data
  paths = {"visual_adaptation": os.path.join(root, paper.stage1),
           "language_adaptation": os.path.join(root, paper.stage2),
           "dual_encoder": os.path.join(root, paper.pool[0])}
  for stage, (relpath, data) in _PAPER_STAGES.items():
    if stage == "dual_encoder":
      d = config.dual_encoder
      arg = f"paper,steps={int(d.steps)},batch={int(d.batch)}"
    else:
      s = config.stages[stage]
      arg = f"paper,steps={int(s.steps)},batch={int(s.batch)}"
    cfg = layout.load_config(relpath, arg)
    cfg.data.update(data)
    cfg.data.annotations = paths[stage]
    resolved = train_stage_lib.dry_run(cfg)
    resolved["shardings"] = _abstract_shardings(cfg, int(paper.mesh_devices))
    resolved["batch_size"] = int(cfg.batch_size)
    resolved["total_steps"] = int(cfg.total_steps)
    stages[stage] = resolved
  out["stages"] = stages
  needed = {"vit_import": paper.vit_import, "lm_import": paper.lm_import,
            **{f"data:{k}": v for k, v in paths.items()},
            **{f"data:pool{i}": os.path.join(root, p) for i, p in enumerate(paper.pool)},
            "data:eval": os.path.join(root, paper.eval)}
  out["data_paths"] = {k: {"path": v, "exists": os.path.exists(v)} for k, v in needed.items()}
  return out
