"""`vidistill train` on streamed shards: a corpus far larger than the memory it may use, and a run
killed with SIGKILL after a checkpoint that resumes to an uninterrupted run's parameters."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import toy
from vidistill.data import shards
from vidistill.data.synthetic import world
from vidistill.models import checkpoint_params
from vidistill.models import param_paths
from vidistill.pipeline import layout
from vidistill.train import stage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "train", "dual_encoder.py")
STEPS = 8


@pytest.fixture(scope="module")
def stage_shards(tmp_path_factory):
  """The tiny world's dual-encoder examples as shards (6 clips: 8 steps of 8 cross 10 epochs)."""
  w = str(tmp_path_factory.mktemp("world"))
  world.synth(layout.load_config("data/synthetic.py", "tiny"), w)
  prefix = str(tmp_path_factory.mktemp("shards") / "de")
  stage.write_shards(layout.load_config("train/dual_encoder.py", f"tiny,world={w},source=alt_text"),
                     prefix, 2)
  return w, prefix


def _train_command(world_dir, prefix, workdir, *extra):
  return [sys.executable, "-m", "vidistill.cli", "train",
          "--config", f"{CONFIG}:tiny,world={world_dir},source=alt_text,steps={STEPS},batch=8",
          f"--config.data.shards={prefix}", "--config.checkpoint_every=2",
          "--config.keep_checkpoints=0", f"--workdir={workdir}", *extra]


def _final_params(workdir):
  directory = os.path.join(workdir, "checkpoints", str(STEPS), "params")
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  tree = ocp.PyTreeCheckpointer().restore(directory)
  return {k: np.asarray(v) for k, v in param_paths.flatten(tree).items()}


def _committed(workdir):
  directory = os.path.join(workdir, "checkpoints")
  return sorted(int(s) for s in os.listdir(directory) if s.isdigit() and os.path.exists(
      os.path.join(directory, s, checkpoint_params.COMMIT_FILE))) if os.path.isdir(directory) else []


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_gives_the_uninterrupted_params(stage_shards,
                                                                               tmp_path):
  world_dir, prefix = stage_shards
  env = toy.subprocess_env()
  reference = tmp_path / "reference"
  done = subprocess.run(_train_command(world_dir, prefix, reference), capture_output=True,
                        text=True, timeout=600, env=env)
  assert done.returncode == 0, done.stderr[-4000:]

  workdir = tmp_path / "killed"
  proc = subprocess.Popen(_train_command(world_dir, prefix, workdir), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env)
  log = []
  for line in proc.stdout:
    log.append(line)
    # Past step 5 the checkpoint of step 4 is being (or has been) written; kill once one is.
    if f"step 5/{STEPS} " in line:
      deadline = time.time() + 30
      while not _committed(workdir) and time.time() < deadline:
        time.sleep(0.05)
      proc.send_signal(signal.SIGKILL)
      break
  proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL, "".join(log)[-3000:]
  killed_at = _committed(workdir)
  assert killed_at and max(killed_at) < STEPS, killed_at

  resumed = subprocess.run(_train_command(world_dir, prefix, workdir), capture_output=True,
                           text=True, timeout=600, env=env)
  assert resumed.returncode == 0, resumed.stderr[-4000:]
  assert f"resuming from {workdir}/checkpoints/{max(killed_at)}" in resumed.stderr
  got, want = _final_params(workdir), _final_params(reference)
  assert sorted(got) == sorted(want) and want
  for key, value in want.items():
    assert np.array_equal(got[key].view(np.uint32), value.view(np.uint32)), key


def _peak_rss_mb(command, env):
  """Peak resident memory (VmHWM) of `command`, run to completion in a child of a fresh Python."""
  wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(r.returncode)")
  done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True,
                        text=True, timeout=900, env=env)
  assert done.returncode == 0, done.stderr[-4000:]
  return int(done.stdout.split("PEAK_KB")[1].split()[0]) / 1024


def _repeat(prefix, out, copies):
  """A corpus of `copies` x the stage's examples (each with its own id), as 8 shards."""
  from vidistill.data import grain_source  # pylint: disable=g-import-not-at-top
  rows = grain_source.open_records(prefix)
  n = len(rows)
  examples = ({"id": f"{i:08d}", **rows[i % n]} for i in range(copies * n))
  shards.write_shards(examples, out, 8, "arrayrecord")
  return copies * n


@pytest.mark.slow
def test_a_corpus_ten_times_the_memory_cap_trains_in_bounded_memory(stage_shards, tmp_path):
  world_dir, prefix = stage_shards
  cap_mb = 32  # The peak RSS the big corpus may add over the small one's run.
  clip_bytes = 8 * 32 * 32 * 3  # Decoded frames of one tiny clip, uint8 [8, 32, 32, 3].
  copies = -(-10 * cap_mb * 2**20 // (clip_bytes * 6))
  small = str(tmp_path / "small")
  _repeat(prefix, small, 2)
  big = str(tmp_path / "big")
  count = _repeat(prefix, big, copies)
  assert count * clip_bytes >= 10 * cap_mb * 2**20
  env = toy.subprocess_env()
  peaks = {}
  for name, shard_prefix, extra in (("small", small, ()), ("big", big, ()),
                                    ("big_in_memory", big, ("--config.data.in_memory=True",))):
    command = _train_command(world_dir, shard_prefix, tmp_path / f"run_{name}", *extra)
    peaks[name] = _peak_rss_mb(command, env)
  # The measurement sees a corpus held in memory: the cap is not loose enough to hide one.
  assert peaks["big_in_memory"] - peaks["small"] > 5 * cap_mb, peaks
  assert peaks["big"] - peaks["small"] < cap_mb, (
      f"peak RSS {peaks} MB: streaming {count * clip_bytes / 2**20:.0f} MB of frames grew it by "
      f"{peaks['big'] - peaks['small']:.0f} MB, more than the {cap_mb} MB cap")
