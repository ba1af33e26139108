"""vidistill/launch/sweep.py: sweeps from get_hyper / `sweep` lists / --sweep axes, into runs."""
import itertools
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from vidistill.launch import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUAL = os.path.join(ROOT, "configs", "train", "dual_encoder.py")
_MODULE = [sys.executable, "-c", "import sys; from vidistill.launch import sweep_command; "
           "sweep_command.run('vidistill sweep', sys.argv[1:])"]


def _config_file(tmp_path, body, folder="train"):
  """A config file in a `train/` folder: get_config from the shipped dual encoder + `body`."""
  path = tmp_path / folder / "de_sweep.py"
  path.parent.mkdir(exist_ok=True)
  path.write_text(textwrap.dedent(f"""\
      import importlib.util
      _spec = importlib.util.spec_from_file_location("de", {DUAL!r})
      _de = importlib.util.module_from_spec(_spec)
      _spec.loader.exec_module(_de)
      get_config = _de.get_config
      """) + textwrap.dedent(body))
  return str(path)


def test_hyper_product_zip_chain_against_itertools():
  h = sweep.Hyper()
  a, b = [1e-3, 3e-3, 1e-2], ["x", "y"]
  got = h.product([h.sweep("config.lr", a), h.sweep("arg.k", b)])
  assert got == [{"config.lr": x, "arg.k": y} for x, y in itertools.product(a, b)]
  assert h.zipit([h.sweep("config.a", [1, 2]), h.sweep("config.b", [3, 4])]) == [
      {"config.a": 1, "config.b": 3}, {"config.a": 2, "config.b": 4}]
  assert h.chain([h.fixed("config.a", 1), h.sweep("config.a", [2, 3])]) == [
      {"config.a": 1}, {"config.a": 2}, {"config.a": 3}]
  with pytest.raises(sweep.SweepError, match="one length"):
    h.zipit([h.sweep("config.a", [1]), h.sweep("config.b", [3, 4])])
  with pytest.raises(sweep.SweepError, match="set by two axes"):
    h.product([h.sweep("config.a", [1]), h.sweep("config.a", [2])])
  with pytest.raises(sweep.SweepError, match="no values"):
    h.sweep("config.a", [])


def test_get_hyper_expands_into_commands_that_parse_back(tmp_path):
  path = _config_file(tmp_path, """
      def get_hyper(h):
        return h.product([h.sweep("arg.source", ["alt_text", "gold"]),
                          h.sweep("config.optim.lr", [0.001, 0.003])])
      """)
  runs = sweep.plan(f"{path}:tiny", str(tmp_path / "runs"), extra_args=["--dry_run"])
  assert [r.name for r in runs] == ["source-alt_text_lr-0.001", "source-alt_text_lr-0.003",
                                    "source-gold_lr-0.001", "source-gold_lr-0.003"]
  assert len({r.workdir for r in runs}) == 4
  for r in runs:
    assert r.workdir == str(tmp_path / "runs" / r.name) and "," not in r.workdir
    argv = shlex.split(r.command_line())
    assert argv[:3] == ["vidistill", "train", "--config"]
    assert argv[3] == f"{path}:tiny,source={r.overrides['arg.source']}"
    assert argv[4] == f"--config.optim.lr={r.overrides['config.optim.lr']!r}"
    assert argv[5:] == [f"--workdir={r.workdir}", "--dry_run"]
    # The command's config, built as `vidistill train` builds it, has the run's values.
    config = sweep.load_module(path).get_config(argv[3].split(":", 1)[1])
    config.update_from_flattened_dict({"optim.lr": float(argv[4].split("=")[1])})
    assert config.caption_source == r.overrides["arg.source"]
    assert config.optim.lr == r.overrides["config.optim.lr"]


def test_sweep_list_crossed_with_command_line_axes(tmp_path):
  path = _config_file(tmp_path, """
      sweep = [{"config.batch_size": 8}, {"config.batch_size": 16}]
      """)
  runs = sweep.plan(path, str(tmp_path), axes=["config.seed=1,2,3"])
  assert [r.overrides for r in runs] == [
      {"config.batch_size": b, "config.seed": s} for b in (8, 16) for s in (1, 2, 3)]
  assert runs[0].argv[3] == path  # No argument: the config's default variant.


def test_mistakes_fail_before_anything_runs(tmp_path):
  path = _config_file(tmp_path, "")
  with pytest.raises(sweep.SweepError, match="'config.optim.lrr' is not a field"):
    sweep.plan(f"{path}:tiny", str(tmp_path), axes=["config.optim.lrr=1"])
  with pytest.raises(sweep.SweepError, match="must start with 'config.'"):
    sweep.plan(f"{path}:tiny", str(tmp_path), axes=["optim.lr=1"])
  with pytest.raises(sweep.SweepError, match="unknown variant 'tinyy'"):
    sweep.plan(f"{path}:tinyy", str(tmp_path))
  with pytest.raises(sweep.SweepError, match="expected KEY=V1,V2"):
    sweep.plan(f"{path}:tiny", str(tmp_path), axes=["config.seed"])
  with pytest.raises(sweep.SweepError, match="does not exist"):
    sweep.plan(str(tmp_path / "nope.py"), str(tmp_path))
  other = _config_file(tmp_path, "", folder="misc")
  with pytest.raises(sweep.SweepError, match="pass --command"):
    sweep.plan(other, str(tmp_path))
  assert sweep.plan(other, str(tmp_path), command="caption")[0].argv[1] == "caption"
  assert sweep.plan(other, str(tmp_path), command="caption")[0].argv[-1].startswith("--output=")


def _sweep_cli(*args):
  return subprocess.run(_MODULE + list(args), capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_command_dry_run_prints_every_run(tmp_path):
  out = _sweep_cli("--config", "configs/train/dual_encoder.py:quick", "--sweep",
                   "arg.source=alt_text,pseudo", "--workdir", str(tmp_path), "--dry_run")
  assert out.returncode == 0, out.stderr
  commands = [l for l in out.stdout.splitlines() if l.startswith("vidistill ")]
  assert commands == [
      f"vidistill train --config configs/train/dual_encoder.py:quick,source={s} "
      f"--workdir={tmp_path}/source-{s}" for s in ("alt_text", "pseudo")]
  assert not os.listdir(tmp_path)  # Nothing ran.


def test_command_runs_each_run_through_a_launcher_script(tmp_path):
  """Without --dry_run: every run goes to the script as `<script> <args> -- <command>`."""
  log = tmp_path / "calls.txt"
  script = tmp_path / "fake_launcher.sh"
  script.write_text(f'#!/bin/bash\necho "$*" >> {log}\n[[ "$*" != *seed=2* ]]\n')
  script.chmod(0o755)
  base = tmp_path / "runs"
  out = _sweep_cli("--config", "configs/train/dual_encoder.py:tiny", "--sweep", "config.seed=1,2,3",
                   "--workdir", str(base), "--launcher=script", f"--launcher_script={script}",
                   "--launcher_args=--name pod --zone z", "--keep_going")
  assert out.returncode == 1 and "failed runs: ['seed-2']" in out.stderr
  calls = log.read_text().splitlines()
  assert calls == [f"--name pod --zone z -- vidistill train --config "
                   f"configs/train/dual_encoder.py:tiny --config.seed={s} --workdir={base}/seed-{s}"
                   for s in (1, 2, 3)]


def test_command_errors_are_one_line(tmp_path):
  out = _sweep_cli("--config", "configs/train/dual_encoder.py:tiny", "--workdir", str(tmp_path),
                   "--sweep", "config.nope=1,2", "--dry_run")
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert "'config.nope' is not a field" in out.stderr
  out = _sweep_cli("--config", "configs/train/dual_encoder.py:tiny", "--dry_run")
  assert out.returncode == 2 and "--workdir is required" in out.stderr
