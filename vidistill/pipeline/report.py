"""The pipeline's report: report.json (every number), report.md (the paper's tables in
miniature, each claim judged), scaling.png (R@1 vs captioned clips) and samples.png (frame strips).

Every number is a mean ± std over the seeds run (`--seeds N`); a claim is "reproduced" only when
the mean ordering holds by more than `config.report.margin_stds` times the spread of the two rows
(the larger std of the pair, 0 with one seed), and the report says "not reproduced" otherwise.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from vidistill.data import caption_output
from vidistill.pipeline import content
from vidistill.pipeline import timings as timings_lib
from vidistill.pipeline import layout

CAPTION_METRICS = ("CIDEr-D", "BLEU-4", "ROUGE-L")
CONTENT_METRICS = ("object_f1", "first_action_accuracy", "sequence_accuracy")
RETRIEVAL_METRICS = ("t2v/R@1", "t2v/R@5", "t2v/R@10", "v2t/R@1", "v2t/R@5", "v2t/R@10")


def _json(path: str) -> Any:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _jsonl(path: str) -> list[dict[str, Any]]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _stat(values: Sequence[float]) -> dict[str, Any]:
  v = np.asarray(values, np.float64)
  return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
          "values": [float(x) for x in v]}


def _fmt(s: Mapping[str, Any] | None, digits: int = 1) -> str:
  if s is None:
    return "n/a"
  return (f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" if len(s["values"]) > 1
          else f"{s['mean']:.{digits}f}")


def _seeds(workdir: str) -> list[int]:
  return sorted(int(d.split("_", 1)[1]) for d in os.listdir(workdir)
                if d.startswith("seed_") and d.split("_", 1)[1].isdigit())


def _suite_results(path: str) -> dict[str, dict[str, float]]:
  return _json(os.path.join(path, "results.json"))["results"]


def _vlm_numbers(seed_dir: str, row: str, test: Mapping[str, Any]) -> dict[str, float]:
  """Captioning (surface + content) and QA numbers of one VLM of one seed."""
  out_dir = os.path.join(seed_dir, f"eval_{row}")
  cap = _suite_results(os.path.join(out_dir, "captioning"))["synthetic_test"]
  qa = _suite_results(os.path.join(out_dir, "qa"))
  numbers = {k: float(cap[k]) for k in CAPTION_METRICS}
  preds = _jsonl(os.path.join(out_dir, "captioning", "synthetic_test", "predictions.jsonl"))
  scored = content.score({p["video_id"]: p["prediction"] for p in preds}, test)
  numbers.update({k: 100.0 * scored[k] for k in CONTENT_METRICS})
  numbers["qa_multiple_choice"] = float(qa["synthetic_nextqa_mc"]["accuracy"])
  numbers["qa_open_ended"] = float(qa["synthetic_msrvtt_qa"]["accuracy"])
  return numbers


def _de_numbers(seed_dir: str, step: str) -> dict[str, float]:
  out_dir = os.path.join(seed_dir, f"eval_{step}")
  ret = _suite_results(os.path.join(out_dir, "retrieval"))["synthetic_test"]
  zs = _suite_results(os.path.join(out_dir, "zero_shot"))["synthetic_actions"]
  numbers = {k: float(ret[k]) for k in RETRIEVAL_METRICS}
  numbers["zero_shot_top1"] = float(zs["top1"])
  return numbers


def _source_content(seed_dir: str, source: str, pool: Mapping[str, Any]) -> dict[str, float]:
  """What the dual encoder's training captions say about the pool clips, vs their truth."""
  if source in ("pseudo", "frame"):
    texts = {k: v[0] for k, v in caption_output.read_captions(
        os.path.join(seed_dir, f"caption_{source}")).items()}
  else:
    key = {"alt_text": "alt_text", "gold": "gold_caption"}[source]
    texts = {k: r[key] for k, r in pool.items()}
  scored = content.score(texts, pool)
  return {f"pool_{k}": 100.0 * scored[k] for k in CONTENT_METRICS}


def collect(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """report.json's content: every number of every seed, and mean ± std over seeds."""
  from vidistill.data.synthetic import world as world_lib  # pylint: disable=g-import-not-at-top
  ctx = layout.Context(config, workdir)
  info = world_lib.load_world(ctx.world)
  test = {r["id"]: r for r in world_lib.load_truth(ctx.world, "test")}
  pool = {r["id"]: r for r in world_lib.load_truth(ctx.world, "pool")}
  seeds = _seeds(workdir)
  vlm_rows = [r for r in layout.VLMS if r != "visual_lm_unfrozen" or config.lm_unfrozen_ablation]
  per_seed: dict[str, Any] = {"adaptation": {}, "dual_encoder": {}, "scaling": {}}
  for seed in seeds:
    sd = os.path.join(workdir, f"seed_{seed}")
    for row in vlm_rows:
      per_seed["adaptation"].setdefault(row, []).append(_vlm_numbers(sd, row, test))
    for source in config.dual_encoder.sources:
      numbers = _de_numbers(sd, layout.de_step_name(source, 1.0))
      numbers.update(_source_content(sd, source, pool))
      per_seed["dual_encoder"].setdefault(source, []).append(numbers)
    for source, fraction in layout.dual_encoder_runs(config):
      if source in config.dual_encoder.scaling_sources:
        key = f"{source}@{fraction_key(fraction)}"
        per_seed["scaling"].setdefault(key, []).append(
            _de_numbers(sd, layout.de_step_name(source, fraction)))

  def summarise(table: Mapping[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    return {row: {k: _stat([r[k] for r in runs]) for k in runs[0]} for row, runs in table.items()}

  pool_size = len(pool)
  scaling = {}
  for source in config.dual_encoder.scaling_sources:
    points = []
    for fraction in sorted({float(f) for f in config.dual_encoder.fractions} | {1.0}):
      # The whole pool's run is the source's row of the caption-source table.
      runs = (per_seed["dual_encoder"].get(source) if fraction >= 1.0
              else per_seed["scaling"].get(f"{source}@{fraction_key(fraction)}"))
      if not runs:
        continue
      points.append({"fraction": fraction, "clips": max(1, int(round(fraction * pool_size))),
                     **{k: _stat([r[k] for r in runs]) for k in ("t2v/R@1", "t2v/R@5")}})
    scaling[source] = points
  timings = timings_lib.read(workdir)
  doc = {
      "variant": config.variant, "seeds": seeds, "world": ctx.world,
      "world_splits": {s: v["size"] for s, v in info["splits"].items()},
      "chance": info["chance"],
      "adaptation": summarise(per_seed["adaptation"]),
      "dual_encoder": summarise(per_seed["dual_encoder"]),
      "scaling": scaling,
      "per_seed": per_seed,
      "timings_s": {k: v for k, v in timings.items() if k != timings_lib.WALL_CLOCK},
      "wall_clock_s": timings.get(timings_lib.WALL_CLOCK),
      "workers": int(config.get("workers", 1)),
  }
  doc["claims"] = judge(doc, float(config.report.margin_stds))
  return doc


def fraction_key(fraction: float) -> str:
  return layout.fraction_name(fraction)


def _beats(a: Mapping[str, Any], b: Mapping[str, Any],
           margin_stds: float) -> tuple[bool, float, float]:
  """a > b by more than `margin_stds` times the larger spread of the two (means decide)."""
  margin = a["mean"] - b["mean"]
  spread = max(a["std"], b["std"])
  return margin > margin_stds * spread and margin > 0, margin, spread


def judge(doc: Mapping[str, Any], margin_stds: float = 1.0) -> list[dict[str, Any]]:
  """The paper's claims on this run's numbers: reproduced or not, with margins and spreads.

  The paper claims orderings (and what they imply: the adapted model names motion more often than
  chance and than the image model), not absolute levels, which a miniature cannot be held to.
  `margin_stds` (config.report.margin_stds): how many of the larger std a margin must exceed.
  """
  claims = []
  ad, de = doc["adaptation"], doc["dual_encoder"]

  def add(claim: str, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> None:
    results = [_beats(a, b, margin_stds) for a, b in pairs]
    claims.append({"claim": claim, "reproduced": all(r[0] for r in results),
                   "margins": [round(r[1], 3) for r in results],
                   "spreads": [round(r[2], 3) for r in results]})

  if all(r in ad for r in ("image", "visual", "visual_language")):
    for metric in ("CIDEr-D", "first_action_accuracy"):
      add(f"captioning {metric}: image VLM < + visual adaptation < + visual and language "
          "adaptation", [(ad["visual"][metric], ad["image"][metric]),
                         (ad["visual_language"][metric], ad["visual"][metric])])
    fa = {r: ad[r]["first_action_accuracy"] for r in ("image", "visual_language")}
    chance = 100 * doc["chance"]["first_action_accuracy"]
    add("the adapted VLM names the first action more often than chance and than the image VLM",
        [(fa["visual_language"], {"mean": chance, "std": 0.0}),
         (fa["visual_language"], fa["image"])])
  if all(s in de for s in ("pseudo", "alt_text")):
    add("retrieval t2v R@1: pseudo-captions > alt-text",
        [(de["pseudo"]["t2v/R@1"], de["alt_text"]["t2v/R@1"])])
  if all(s in de for s in ("pseudo", "frame")):
    add("retrieval t2v R@1: pseudo-captions > per-frame captions of the image VLM",
        [(de["pseudo"]["t2v/R@1"], de["frame"]["t2v/R@1"])])
  curves = doc["scaling"]
  if len(curves.get("pseudo", [])) >= 2 and len(curves.get("alt_text", [])) >= 2:
    gap = [p["t2v/R@1"]["mean"] - a["t2v/R@1"]["mean"]
           for p, a in zip(curves["pseudo"], curves["alt_text"])]
    spread = max(max(p["t2v/R@1"]["std"], a["t2v/R@1"]["std"])
                 for p, a in zip(curves["pseudo"], curves["alt_text"]))
    claims.append({"claim": "the gap of pseudo-captions over alt-text (t2v R@1) grows with the "
                   "number of captioned clips",
                   "reproduced": gap[-1] - gap[0] > margin_stds * spread,
                   "margins": [round(g, 3) for g in gap], "spreads": [round(spread, 3)]})
  return claims


# ------------------------------------------------------------------------------------------------
# Figures.

def scaling_plot(doc: Mapping[str, Any], path: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=110)
  for source, points in doc["scaling"].items():
    if not points:
      continue
    x = [p["clips"] for p in points]
    y = np.array([p["t2v/R@1"]["mean"] for p in points])
    e = np.array([p["t2v/R@1"]["std"] for p in points])
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3,
                label={"pseudo": "pseudo-captions", "alt_text": "alt-text"}.get(source, source))
  chance = doc["chance"].get("retrieval_r1")
  if chance is not None:
    ax.axhline(100 * chance, color="grey", linestyle=":", label="chance")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("captioned clips in the pool")
  ax.set_ylabel("text-to-video R@1 (%)")
  ax.set_title("Dual encoder: scaling with captioned clips")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def samples(config: ml_collections.ConfigDict, workdir: str, path: str) -> list[dict[str, str]]:
  """A few held-out clips: gold, alt-text and every VLM's caption; their frame strips as a PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from vidistill.data.synthetic import world as world_lib  # pylint: disable=g-import-not-at-top
  ctx = layout.Context(config, workdir)
  test = {r["id"]: r for r in world_lib.load_truth(ctx.world, "test")}
  seed_dir = os.path.join(workdir, f"seed_{_seeds(workdir)[0]}")
  preds = {}
  for row in layout.VLMS:
    p = os.path.join(seed_dir, f"eval_{row}", "captioning", "synthetic_test", "predictions.jsonl")
    if os.path.exists(p):
      preds[row] = {r["video_id"]: r["prediction"] for r in _jsonl(p)}
  ids = sorted(set.intersection(*(set(v) for v in preds.values())) if preds else set(),
               key=lambda v: test[v]["index"] if v in test else 0)[:int(config.report.samples)]
  rows = []
  for vid in ids:
    r = test[vid]
    rows.append({"id": vid, "gold": r["gold_caption"], "alt_text": r["alt_text"],
                 **{row: preds[row][vid] for row in preds}})
  if ids:
    strips = [world_lib.regenerate_frames(test[v]) for v in ids]
    fig, axes = plt.subplots(len(ids), 1, figsize=(8, 1.2 * len(ids)), dpi=100, squeeze=False)
    for ax, vid, frames in zip(axes[:, 0], ids, strips):
      ax.imshow(np.concatenate(list(frames), axis=1), interpolation="nearest")
      ax.set_axis_off()
      ax.set_title(vid, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
  return rows


# ------------------------------------------------------------------------------------------------
# Markdown.

_ROW_NAMES = {"image": "image VLM", "visual": "+ visual adaptation",
              "visual_language": "+ visual + language adaptation",
              "visual_lm_unfrozen": "visual adaptation, LM unfrozen (ablation)",
              "alt_text": "alt-text", "frame": "per-frame captions (image VLM)",
              "pseudo": "pseudo-captions (adapted VLM)", "gold": "gold captions (upper bound)"}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
          *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(doc: Mapping[str, Any], sample_rows: Sequence[Mapping[str, str]]) -> str:
  n = len(doc["seeds"])
  lines = [f"# vidistill pipeline report ({doc['variant']})", "",
           f"Seeds: {n} ({'mean ± std' if n > 1 else 'one seed: no spread'}). World: "
           + ", ".join(f"{k} {v}" for k, v in doc["world_splits"].items()) + ".", ""]
  lines += ["## Claims", ""]
  for c in doc["claims"]:
    verdict = "reproduced" if c["reproduced"] else "**not reproduced**"
    lines.append(f"- {c['claim']}: {verdict} (margins {c['margins']}, spread {c['spreads']})")
  ad = doc["adaptation"]
  cols = CAPTION_METRICS + CONTENT_METRICS + ("qa_multiple_choice", "qa_open_ended")
  lines += ["", "## Adaptation ablation (held-out test captions, QA split)", ""]
  lines += _table(["model", *cols], [[_ROW_NAMES[r], *(_fmt(ad[r][k]) for k in cols)] for r in ad])
  de = doc["dual_encoder"]
  cols = RETRIEVAL_METRICS + ("zero_shot_top1", "pool_object_f1", "pool_first_action_accuracy")
  lines += ["", "## Dual encoder by caption source (whole pool)", "",
            "pool_*: what the training captions say about the pool clips (content metrics).", ""]
  lines += _table(["caption source", *cols], [[_ROW_NAMES[s], *(_fmt(de[s][k]) for k in cols)]
                                              for s in de])
  lines += ["", "## Scaling: t2v R@1 vs captioned clips", "", "![scaling](scaling.png)", ""]
  rows = []
  for source, points in doc["scaling"].items():
    for p in points:
      rows.append([_ROW_NAMES[source], str(p["clips"]), _fmt(p["t2v/R@1"]), _fmt(p["t2v/R@5"])])
  lines += _table(["source", "clips", "t2v R@1", "t2v R@5"], rows)
  lines += ["", "## Chance levels (world.json)", ""]
  lines += _table(["test", "chance (%)"], [[k, f"{100 * v:.1f}"] for k, v in
                                           sorted(doc["chance"].items())])
  if sample_rows:
    lines += ["", "## Sample captions (seed 0)", "", "![frames](samples.png)", ""]
    keys = [k for k in sample_rows[0] if k != "id"]
    lines += _table(["clip", *keys], [[r["id"], *(r[k] for k in keys)] for r in sample_rows])
  lines += ["", "## Time per step (s)", ""]
  lines += _table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in doc["timings_s"].items()])
  total = sum(doc["timings_s"].values())
  lines += ["", f"Total: {total:.0f} s of steps ({total / 60:.1f} min)."]
  if doc.get("wall_clock_s"):
    wall = doc["wall_clock_s"]
    lines[-1] += (f" Wall clock spent making them: {wall:.0f} s ({wall / 60:.1f} min), "
                  f"{doc['workers']} step(s) at once.")
  lines.append("")
  return "\n".join(lines)


def write(config: ml_collections.ConfigDict, workdir: str, out: str) -> dict[str, Any]:
  """Writes report.json, report.md, scaling.png, samples.png into `workdir` (and `out`)."""
  os.makedirs(out, exist_ok=True)
  doc = collect(config, workdir)
  scaling_plot(doc, os.path.join(workdir, "scaling.png"))
  sample_rows = samples(config, workdir, os.path.join(workdir, "samples.png"))
  doc["samples"] = sample_rows
  for name, text in (("report.json", json.dumps(doc, indent=1, sort_keys=True)),
                     ("report.md", markdown(doc, sample_rows))):
    for folder in (workdir, out):
      with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write(text + "\n")
  return doc
