"""THE end-to-end test: `configs/pipeline.py:quick` runs every step of the method on a very small
world and writes every artefact; every number is finite and in range (claims are not asserted:
that is the default variant's job). Rerunning skips every step; --only runs one.
Marked slow: every stage compiles its own step (~10-50 s each on 2 shared cores), so the whole
quick variant takes several minutes here (`pytest -m slow tests/pipeline/test_pipeline_quick.py`).
"""
import json
import math
import os

import pytest

from vidistill.pipeline import runner
from vidistill.pipeline import steps as steps_lib


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("pipeline_quick"))
  config = steps_lib.load_config("pipeline.py", "quick")
  lines = []
  timings = runner.run(config, workdir, log=lines.append)
  return config, workdir, timings, lines


def _numbers(tree, path=""):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _numbers(v, f"{path}/{k}")
  elif isinstance(tree, list):
    for i, v in enumerate(tree):
      yield from _numbers(v, f"{path}[{i}]")
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield path, float(tree)


@pytest.mark.slow
@pytest.mark.pipeline
def test_every_step_ran_and_every_artefact_is_written(quick):
  config, workdir, timings, lines = quick
  names = runner.step_names(config)
  assert {k.split("/", 1)[1] for k in timings} == set(names)
  for step in steps_lib.build(config):
    assert steps_lib.is_done(step.out_dir(steps_lib.Context(config, workdir))), step.name
  for name in ("report.md", "report.json", "scaling.png", "samples.png", "timings.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  with open(os.path.join(workdir, "scaling.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert any("ETA" in l for l in lines)


@pytest.mark.slow
@pytest.mark.pipeline
def test_every_number_is_finite_and_in_range(quick):
  _, workdir, _, _ = quick
  doc = json.load(open(os.path.join(workdir, "report.json")))
  for table in ("adaptation", "dual_encoder"):
    assert doc[table]
    for row, metrics in doc[table].items():
      for metric, stat in metrics.items():
        bound = 1000.0 if metric.startswith("CIDEr") else 100.0  # CIDEr-D x100 reaches > 100.
        assert 0.0 <= stat["mean"] <= bound, (table, row, metric, stat)
  for path, value in _numbers(doc):
    assert math.isfinite(value), path
  for source in ("pseudo", "alt_text"):
    clips = [p["clips"] for p in doc["scaling"][source]]
    assert clips == sorted(clips) and len(clips) >= 2
  assert {c["claim"].split(":")[0] for c in doc["claims"]} >= {"retrieval t2v R@1"}
  assert all(isinstance(c["reproduced"], bool) for c in doc["claims"])
  text = open(os.path.join(workdir, "report.md")).read()
  for heading in ("Adaptation ablation", "Dual encoder by caption source", "Scaling",
                  "Chance levels", "Sample captions", "Time per step", "Claims"):
    assert heading in text


@pytest.mark.slow
@pytest.mark.pipeline
def test_rerun_skips_and_only_runs_one_step(quick):
  config, workdir, _, _ = quick
  lines = []
  assert runner.run(config, workdir, log=lines.append) == {}
  assert all("skipped" in l for l in lines)
  os.remove(os.path.join(workdir, "report.md"))
  timings = runner.run(config, workdir, only="report", log=lambda _: None)
  assert list(timings) == ["0/report"]
  assert os.path.exists(os.path.join(workdir, "report.md"))
