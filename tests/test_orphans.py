"""Worker processes never outlive a parent killed with SIGKILL: a pool's workers, and the whole
process group of a real `vidistill pipeline` run (its step workers, the world's render workers)."""
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def group_members(pgid):
  """Live (not zombie) processes whose process group is `pgid`."""
  alive = []
  for name in os.listdir("/proc"):
    if not name.isdigit():
      continue
    try:
      with open(f"/proc/{name}/stat") as f:
        stat = f.read()
    except OSError:
      continue
    fields = stat[stat.rindex(")") + 2:].split()  # After "pid (comm) ": state ppid pgrp ...
    if int(fields[2]) == pgid and fields[0] != "Z":
      alive.append(int(name))
  return alive


def wait_until_gone(pgid, timeout_s):
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    if not group_members(pgid):
      return True
    time.sleep(0.2)
  return False


def _env():
  return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


# A parent that starts the pipeline's worker pool, gives each worker a long task, says READY and
# waits: it is then killed like a user's pipeline would be.
_POOL_PARENT = """
import sys, time
from vidistill.pipeline import runner
if __name__ == "__main__":
  pool = runner._Pool(2)
  futures = [pool.executor.submit(time.sleep, 600) for _ in range(2)]
  while len(pool.executor._processes) < 2:
    time.sleep(0.05)
  time.sleep(1.0)  # Let both workers run their initializer.
  print("READY", flush=True)
  time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_end_when_their_parent_is_killed(tmp_path):
  script = tmp_path / "parent.py"
  script.write_text(_POOL_PARENT)
  proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                          env=_env(), start_new_session=True)
  try:
    assert proc.stdout.readline().strip() == "READY"
    assert len(group_members(proc.pid)) >= 3  # The parent and its two workers (+ tracker).
    proc.kill()
    proc.wait()
    assert wait_until_gone(proc.pid, 10), f"still alive: {group_members(proc.pid)}"
  finally:
    for pid in group_members(proc.pid):
      os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_pipeline_leaves_no_process_of_its_group(tmp_path):
  workdir = tmp_path / "pipeline"
  proc = subprocess.Popen(
      [sys.executable, "-m", "vidistill.cli", "pipeline", "--config",
       f"{ROOT}/configs/pipeline.py:quick", "--workdir", str(workdir)],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
  try:
    # Kill once the world is being rendered: the step's worker, the forkserver and its render
    # workers all run (>= 5 processes besides the resource tracker).
    deadline = time.monotonic() + 240
    while len(group_members(proc.pid)) < 6 and time.monotonic() < deadline:
      assert proc.poll() is None, "the pipeline ended before it was killed"
      time.sleep(0.5)
    started = group_members(proc.pid)
    assert len(started) >= 6, started
    proc.kill()
    proc.wait()
    assert wait_until_gone(proc.pid, 20), f"still alive: {group_members(proc.pid)}"
    assert not (workdir / "world" / "DONE").exists()
  finally:
    for pid in group_members(proc.pid):
      os.kill(pid, signal.SIGKILL)
