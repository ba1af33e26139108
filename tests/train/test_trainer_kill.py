"""A run killed with SIGKILL at a random moment and restarted ends with bit-identical params.

The run is a subprocess (tests/train/toy_run.py) checkpointing asynchronously every 3 steps and
logging every step; it is killed a random time after a random step's log line (so sometimes
mid-save, sometimes before the first checkpoint), then the same command is run to completion.
The reference is the same training uninterrupted, in this process (same 8 CPU devices, same
compiled program through the persistent compilation cache).
"""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

import toy

STEPS = 24
SCRIPT = os.path.join(os.path.dirname(__file__), "toy_run.py")


def _command(workdir):
  return [sys.executable, SCRIPT, str(workdir), "--steps", str(STEPS), "--checkpoint_every", "3",
          "--delay", "0.002"]


def _run_and_kill(workdir, kill_after_step, extra_delay):
  """Starts the run; SIGKILLs it `extra_delay` s after it logs `kill_after_step`."""
  proc = subprocess.Popen(_command(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=toy.subprocess_env())
  log = []
  for line in proc.stdout:
    log.append(line)
    if f"step {kill_after_step}/{STEPS} " in line:
      time.sleep(extra_delay)
      proc.send_signal(signal.SIGKILL)
      break
  proc.wait(timeout=120)
  return proc.returncode, "".join(log)


def test_sigkill_at_a_random_moment_then_restart_gives_identical_params(tmp_path):
  seed = random.randrange(1 << 30)
  rng = random.Random(seed)
  kill_step, delay = rng.randint(1, STEPS - 2), rng.uniform(0.0, 0.1)
  context = f"(random seed {seed}: killed {delay:.3f} s after step {kill_step})"

  workdir = tmp_path / "run"
  code, log = _run_and_kill(workdir, kill_step, delay)
  assert code == -signal.SIGKILL or "DONE" in log, f"{context}\n{log[-3000:]}"
  done = subprocess.run(_command(workdir), capture_output=True, text=True, timeout=300,
                        env=toy.subprocess_env())
  assert done.returncode == 0 and "DONE step=24" in done.stdout, (
      f"{context}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
  resumed = np.load(workdir / "final_params.npz", allow_pickle=False)

  want = toy.reference_params(STEPS, tmp_path / "reference")
  assert sorted(resumed.files) == sorted(want)
  for key, value in want.items():
    assert np.array_equal(resumed[key].view(np.uint32), value.view(np.uint32)), (
        f"{key} differs after kill + resume {context}")
