"""The report from stand-in step outputs on a tiny world: tables, claims, plots, mean ± std."""
import json
import os

import numpy as np
import pytest

from vidistill.pipeline import report
from vidistill.pipeline import layout


def _write(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    if isinstance(obj, list):
      f.write("".join(json.dumps(r) + "\n" for r in obj))
    else:
      json.dump(obj, f)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
  from vidistill.data.synthetic import world
  w = str(tmp_path_factory.mktemp("world"))
  world.synth(layout.load_config("data/synthetic.py", "tiny"), w)
  return w


def _fake_run(config, workdir, world_dir, seeds):
  """Eval outputs where pseudo beats alt-text by seed-independent margins; VLM 'visual_language'
  captions are the gold captions (content metrics must then be 100)."""
  from vidistill.data.synthetic import world
  test = world.load_truth(world_dir, "test")
  for seed in range(seeds):
    sd = os.path.join(workdir, f"seed_{seed}")
    for i, (row, (step, _)) in enumerate(layout.VLMS.items()):
      out = os.path.join(sd, f"eval_{row}")
      _write(os.path.join(out, "captioning", "results.json"), {"results": {"synthetic_test": {
          "CIDEr-D": 10.0 * (i + 1) + seed, "BLEU-4": 5.0 + i, "ROUGE-L": 20.0 + i}}})
      _write(os.path.join(out, "qa", "results.json"), {"results": {
          "synthetic_nextqa_mc": {"accuracy": 30.0 + i}, "synthetic_msrvtt_qa": {"accuracy": 10.0}}})
      preds = [{"video_id": r["id"], "prediction": r["gold_caption"] if row == "visual_language"
                else r["alt_text"]} for r in test]
      _write(os.path.join(out, "captioning", "synthetic_test", "predictions.jsonl"), preds)
    for source, fraction in layout.dual_encoder_runs(config):
      base = {"pseudo": 20.0, "gold": 40.0, "frame": 10.0, "alt_text": 5.0}[source]
      r1 = base * fraction + seed
      out = os.path.join(sd, "eval_" + layout.de_step_name(source, fraction))
      _write(os.path.join(out, "retrieval", "results.json"), {"results": {"synthetic_test": {
          k: r1 * (1 + ("R@5" in k) + 2 * ("R@10" in k)) for k in report.RETRIEVAL_METRICS}}})
      _write(os.path.join(out, "zero_shot", "results.json"),
             {"results": {"synthetic_actions": {"top1": base}}})
    for source in ("pseudo", "frame"):
      _write(os.path.join(sd, f"caption_{source}", "captions.jsonl"), [])


def test_report_tables_claims_and_figures(world_dir, tmp_path, monkeypatch):
  from vidistill.data import caption_output
  config = layout.load_config("pipeline.py", f"quick,world={world_dir}")
  workdir = str(tmp_path)
  _fake_run(config, workdir, world_dir, seeds=2)
  from vidistill.data.synthetic import world
  pool = world.load_truth(world_dir, "pool")
  # The caption job's output format is its own module's business: stand in for its reader.
  monkeypatch.setattr(caption_output, "read_captions",
                      lambda d, prompt=None: {r["id"]: [r["gold_caption"]] for r in pool})
  doc = report.write(config, workdir, str(tmp_path / "report_step"))
  ad = doc["adaptation"]
  # Two seeds: CIDEr values 10(i+1) and 10(i+1)+1 -> mean +0.5, sample std sqrt(0.5).
  assert ad["image"]["CIDEr-D"]["mean"] == pytest.approx(10.5)
  assert ad["image"]["CIDEr-D"]["std"] == pytest.approx(np.std([10, 11], ddof=1))
  assert ad["visual_language"]["first_action_accuracy"]["mean"] == 100.0
  assert ad["image"]["sequence_accuracy"]["mean"] == 0.0  # Alt-text names no action.
  de = doc["dual_encoder"]
  assert de["pseudo"]["t2v/R@1"]["mean"] == pytest.approx(20.5)
  assert de["pseudo"]["pool_first_action_accuracy"]["mean"] == 100.0
  curve = doc["scaling"]["pseudo"]
  fractions = sorted(float(f) for f in config.dual_encoder.fractions)
  assert len(fractions) >= 2 and [p["fraction"] for p in curve] == fractions
  assert [p["clips"] for p in curve] == [round(f * len(pool)) or 1 for f in fractions]
  claims = {c["claim"]: c["reproduced"] for c in doc["claims"]}
  assert claims["retrieval t2v R@1: pseudo-captions > alt-text"] is True
  assert any("grows" in c and v for c, v in claims.items())
  # 'visual_language' captions are gold (first action 100), the image VLM's alt-text (0).
  motion = next(c for c in doc["claims"] if "first action more often than chance" in c["claim"])
  chance = 100 * doc["chance"]["first_action_accuracy"]
  assert motion["reproduced"] and motion["margins"] == [round(100 - chance, 3), 100.0]
  assert not any("60%" in c for c in claims)
  text = open(os.path.join(workdir, "report.md")).read()
  assert "| pseudo-captions (adapted VLM) | 20.5 ± 0.7 |" in text
  for name in ("scaling.png", "samples.png", "report.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0


def _stat(mean, std):
  return {"mean": mean, "std": std, "values": [mean]}


def test_judge_margin_in_stds_is_config_data():
  """A margin of 3 over rows whose larger std is 2: held at 1 std, not at 2."""
  ad = {"image": {"CIDEr-D": _stat(10, 2), "first_action_accuracy": _stat(0, 0)},
        "visual": {"CIDEr-D": _stat(13, 1), "first_action_accuracy": _stat(5, 1)},
        "visual_language": {"CIDEr-D": _stat(16, 1), "first_action_accuracy": _stat(9, 1)}}
  doc = {"adaptation": ad, "dual_encoder": {}, "scaling": {},
         "chance": {"first_action_accuracy": 1 / 12}}
  one = {c["claim"]: c["reproduced"] for c in report.judge(doc, margin_stds=1.0)}
  two = {c["claim"]: c["reproduced"] for c in report.judge(doc, margin_stds=2.0)}
  cider = next(c for c in one if c.startswith("captioning CIDEr-D"))
  assert one[cider] and not two[cider]
  # 9 vs chance 8.33 with std 1: not above chance, so the motion claim fails at any margin.
  motion = next(c for c in one if "more often than chance" in c)
  assert not one[motion] and not two[motion]
