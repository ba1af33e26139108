"""THE end-to-end test: `vidistill pipeline --config configs/pipeline.py:quick` runs every step of
the method on a very small world, as a user runs it (the console command, one CPU device, in a
subprocess), and writes every artefact; every number is finite and in range (claims are not
asserted: that is the default variant's job). Rerunning skips every step; --only runs one.
"""
import json
import math
import os
import subprocess
import sys

import pytest

from vidistill.pipeline import runner
from vidistill.pipeline import timings as timings_lib
from vidistill.pipeline import layout
from vidistill.pipeline import steps as steps_lib

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args):
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "force_host_platform_device_count" not in f)
  env.pop("JAX_PLATFORMS", None)  # As a user's shell: the command picks the platforms itself.
  return subprocess.run([sys.executable, "-m", "vidistill.cli", "pipeline", *args], cwd=_REPO,
                        env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("pipeline_quick"))
  config = layout.load_config("pipeline.py", "quick")
  proc = _cli("--config", os.path.join(_REPO, "configs", "pipeline.py") + ":quick",
              "--workdir", workdir)
  assert proc.returncode == 0, proc.stderr[-4000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("[pipeline]")]
  return config, workdir, timings_lib.read(workdir), lines, proc.stderr, proc.stdout


def _numbers(tree, path=""):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _numbers(v, f"{path}/{k}")
  elif isinstance(tree, list):
    for i, v in enumerate(tree):
      yield from _numbers(v, f"{path}[{i}]")
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield path, float(tree)


def test_every_step_ran_and_every_artefact_is_written(quick):
  config, workdir, timings, lines, *_ = quick
  names = runner.step_names(config)
  wall = timings.pop(timings_lib.WALL_CLOCK)  # A whole run: its wall clock is recorded too.
  assert {k.split("/", 1)[1] for k in timings} == set(names)
  assert all(t > 0 for t in timings.values())
  assert wall > 0  # How far below the steps' sum it lies: `vidistill bench pipeline_overlap`.
  for step in steps_lib.build(config):
    assert layout.is_done(step.out_dir(layout.Context(config, workdir))), step.name
  for name in ("report.md", "report.json", "scaling.png", "samples.png", "timings.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  with open(os.path.join(workdir, "scaling.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert any("ETA" in l for l in lines)


# Start-up lines of TensorFlow's C++ runtime, orbax's handler registry and libtpu on a host without
# TPU chips: the command and its spawned workers keep them off the console.
_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda drivers",
          "Type handler registry", "Unable to register cu", "TPU_WORKER_HOSTNAMES",
          "TPU accelerator type", "libtpu")


def test_no_library_start_up_noise_on_the_console(quick):
  *_, stderr, stdout = quick
  noisy = [l for l in stderr.splitlines() if any(n in l for n in _NOISE)]
  assert not noisy, noisy[:5]
  # The steps' own tables (an evaluation's metrics) stay in their files and the report.
  assert "evaluator" not in stdout, stdout[:500]


def test_every_number_is_finite_and_in_range(quick):
  _, workdir, *_ = quick
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


def test_rerun_skips_and_only_runs_one_step(quick):
  config, workdir, *_ = quick
  lines = []
  assert runner.run(config, workdir, log=lines.append) == {}
  assert all("skipped" in l for l in lines)
  os.remove(os.path.join(workdir, "report.md"))
  timings = runner.run(config, workdir, only="report", log=lambda _: None)
  assert list(timings) == ["0/report"]
  assert os.path.exists(os.path.join(workdir, "report.md"))


def test_readme_gets_the_report_tables_and_figure(quick, tmp_path):
  sys.path.insert(0, os.path.join(_REPO, "tools"))
  import readme_report as readme  # pylint: disable=g-import-not-at-top  (a script, not a package)
  _, workdir, *_ = quick
  path = tmp_path / "README.md"
  path.write_text(f"# x\n\nbefore\n{readme.BEGIN}\nold table\n{readme.END}\nafter\n")
  assert readme.main(["--workdir", workdir, "--readme", str(path),
                      "--figures", str(tmp_path / "fig")]) == 0
  text = path.read_text()
  assert "old table" not in text and text.startswith("# x\n\nbefore\n") and "after" in text
  report = open(os.path.join(workdir, "report.md")).read()
  claims = [l for l in report.splitlines() if l.startswith("- ")]
  assert claims and all(l in text for l in claims)
  assert "| pseudo-captions (adapted VLM) |" in text and "configs/pipeline.py:quick" in text
  assert "](fig/scaling.png)" in text
  assert (tmp_path / "fig" / "scaling.png").read_bytes()[:4] == b"\x89PNG"
