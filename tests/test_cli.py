"""`vidistill` and every subcommand answer --help; unknown commands fail clearly."""
import subprocess
import sys

import pytest

from vidistill import cli


def _run(*args):
  return subprocess.run([sys.executable, "-m", "vidistill.cli", *args], capture_output=True,
                        text=True, timeout=120)


def test_top_level_help_lists_every_command():
  result = _run("--help")
  assert result.returncode == 0
  for name in cli.COMMANDS:
    assert name in result.stdout


def test_no_command_prints_usage_and_fails():
  result = _run()
  assert result.returncode == 2 and "usage: vidistill <command>" in result.stdout


def test_unknown_command_names_it():
  result = _run("trian")
  assert result.returncode == 2 and "unknown command 'trian'" in result.stderr


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_help(name):
  result = _run(name, "--help")
  assert result.returncode == 0, result.stderr
  text = result.stdout
  assert cli.COMMANDS[name].summary.split()[0] in text
  # Every job names its inputs and outputs as flags (bench writes to --out).
  assert any(flag in text for flag in ("--config", "--workdir", "--out"))


@pytest.mark.parametrize("args, message", [
    (["--config", "configs/data/synthetic.py:tiny,res=20"], "config.resolution=20"),
    (["--config", "configs/data/synthetic.py:tiny", "--config.nope=3"], "no field 'nope'"),
    (["--config", "configs/data/synthetic.py:tiny", "--config.seed=abc"], "--config.seed=abc"),
])
def test_config_errors_are_one_line_with_key_and_value(tmp_path, args, message):
  result = _run("data", "synth", *args, "--workdir", str(tmp_path / "w"))
  assert result.returncode == 2
  assert message in result.stderr and "Traceback" not in result.stderr
