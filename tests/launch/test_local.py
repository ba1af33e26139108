"""vidistill/launch/local.py: N real processes on this machine joined by jax.distributed."""
import io
import os
import re
import subprocess
import sys
import time

import pytest

from vidistill.launch import local
from vidistill.parallel import multihost

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "allgather_worker.py")
# `vidistill` as the entry point runs it (cli.py's table).
CLI = [sys.executable, "-m", "vidistill.cli"]


def test_process_env_is_what_multihost_reads():
  env = local.process_env(1, 3, "127.0.0.1:1234", devices_per_process=2,
                          base={"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_x=1"})
  setup = multihost.resolve_setup(env=env)
  assert setup == multihost.DistributedSetup("explicit", "127.0.0.1:1234", 3, 1, None)
  assert env["XLA_FLAGS"].split() == ["--xla_x=1", "--xla_force_host_platform_device_count=2"]
  assert env["JAX_PLATFORMS"] == "cpu" and env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] == "gloo"
  with pytest.raises(local.LaunchError, match="process_id=3 is outside"):
    local.process_env(3, 3, "x:1")


def test_resolve_command():
  assert local.resolve_command(["vidistill", "train", "--x"]) == [
      sys.executable, "-m", "vidistill.cli", "train", "--x"]
  assert local.resolve_command(["echo", "hi"]) == ["echo", "hi"]
  with pytest.raises(local.LaunchError, match="after `--`"):
    local.resolve_command([])


def test_two_processes_gather_across_processes():
  out = io.StringIO()
  result = local.launch([sys.executable, WORKER], 2, devices_per_process=2, timeout_s=120, out=out)
  text = out.getvalue()
  assert result.returncodes == (0, 0), text[-3000:]
  rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"\[p(\d)\] RESULT .*", text)}
  assert sorted(rows) == [0, 1], text[-3000:]
  for i in (0, 1):
    assert f"process={i} of=2 devices=4 gathered=[[0, 2], [1, 2]] sum=4" in rows[i]
    assert "mode=explicit" in rows[i]


def test_a_failing_process_stops_the_others():
  code = ("import os, sys, time\n"
          "if os.environ['VIDISTILL_PROCESS_ID'] == '1': sys.exit(3)\n"
          "time.sleep(120)\n")
  start = time.monotonic()
  result = local.launch([sys.executable, "-c", code], 2, out=io.StringIO())
  assert time.monotonic() - start < 60
  assert result.returncodes[1] == 3 and result.returncodes[0] != 0
  assert result.returncode != 0


# The command's module without cli.py in front: cli.py imports TensorFlow (~10 s) before every
# command but --help, which `launch` does not need.
_MODULE = [sys.executable, "-c", "import sys; from vidistill.launch import command; "
           "command.run('vidistill launch', sys.argv[1:])"]


def _launch_cli(*args, timeout=180, via_cli=False):
  return subprocess.run((CLI + ["launch"] if via_cli else _MODULE) + list(args),
                        capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_command_line_runs_two_processes():
  out = _launch_cli(via_cli=True, *("local", "--num_processes=2", "--", sys.executable, WORKER))
  assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
  assert "[p0] RESULT mode=explicit process=0 of=2" in out.stdout
  assert "[p1] RESULT mode=explicit process=1 of=2" in out.stdout


def test_command_line_errors_are_one_line():
  out = _launch_cli("local", "--", "vidistill", "train")
  assert out.returncode == 2 and "--num_processes is required" in out.stderr
  out = _launch_cli("local", "--num_processes=2")
  assert out.returncode == 2 and "no command given" in out.stderr
  out = _launch_cli("pod", "--num_processes=2", "--", "true")
  assert out.returncode == 2 and "unknown launcher 'pod'" in out.stderr
  out = _launch_cli("local", "--num_processes=2", "--dry_run", "--", "vidistill", "train", "--help")
  assert out.returncode == 0, out.stderr
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 2 and "VIDISTILL_PROCESS_ID=1" in lines[1]
  assert lines[0].endswith("vidistill train --help")


@pytest.mark.slow
@pytest.mark.long
def test_two_process_training_on_a_tiny_world(tmp_path):
  """The real `vidistill train`, as two processes of one device each (one checkpoint, one
  config.json: process 0 and 1 share the workdir)."""
  world = tmp_path / "world"
  subprocess.run(CLI + ["data", "synth", "--config", "configs/data/synthetic.py:tiny",
                        "--workdir", str(world)], check=True, cwd=ROOT, capture_output=True)
  out = _launch_cli("local", "--num_processes=2", "--", "vidistill", "train", "--config",
                    f"configs/train/image_pretrain.py:tiny,world={world},steps=2",
                    "--config.checkpoint_every=0", "--workdir", str(tmp_path / "s0"), timeout=500,
                    via_cli=True)
  assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
  assert "process 1 of 2" in out.stdout + out.stderr
  assert sorted(os.listdir(tmp_path / "s0" / "checkpoints")) == ["2"]


def test_cli_lists_launch_and_sweep():
  from vidistill import cli
  assert cli.COMMANDS["launch"].module == "vidistill.launch.command"
  assert cli.COMMANDS["sweep"].module == "vidistill.launch.sweep_command"
