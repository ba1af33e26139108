"""The end of a multi-process job: wait for live peers, stop at once for a dead one."""
import json
import os
import threading
import time

from vidistill.caption import commit
from vidistill.caption import peers
from vidistill.data import caption_output


def _output(tmp_path, num_units, done=()):
  out = str(tmp_path / "out")
  commit.make_dirs(out)
  with open(os.path.join(out, caption_output.PLAN_FILE), "w") as f:
    f.write(json.dumps({"num_units": num_units, "num_entries": num_units}) + "\n")
  for unit in done:
    commit.commit_unit(out, unit, [], [], "jsonl", {"videos": 1})
  return out


def _beat(out, process, age_s):
  path = peers.heartbeat_path(out, process)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump({"time": time.time() - age_s}, f)


def test_alive_is_a_recent_heartbeat(tmp_path):
  out = _output(tmp_path, 2)
  _beat(out, 0, 1.0)
  _beat(out, 1, 60.0)
  assert peers.alive(out, 3, timeout_s=10) == {0}


def test_a_complete_job_returns_at_once(tmp_path):
  out = _output(tmp_path, 2, done=(0, 1))
  status, gone = peers.wait_for_peers(out, 0, 2, timeout_s=10)
  assert status["complete"] and gone == {}


def test_a_dead_owner_of_uncommitted_units_ends_the_wait(tmp_path, monkeypatch):
  monkeypatch.setattr(peers, "_STARTED", time.time() - 60.0)  # This process ran for a minute.
  out = _output(tmp_path, 4, done=(0, 2))
  _beat(out, 0, 0.0)
  _beat(out, 1, 30.0)  # Beat during this run, then silent for longer than the timeout.
  started = time.monotonic()
  status, gone = peers.wait_for_peers(out, 0, 2, timeout_s=10, poll_s=0.05)
  assert time.monotonic() - started < 5
  assert gone == {1: [1, 3]} and not status["complete"]
  message = peers.lost_message(0, gone, 10)
  assert "process 1 (units [1, 3])" in message and "exit code 4" in message


def test_a_live_peer_is_waited_for_until_it_commits(tmp_path):
  out = _output(tmp_path, 2, done=(0,))
  heartbeat = peers.Heartbeat(out, 1, every_s=0.05)  # The peer, alive and still working.
  try:
    _beat(out, 0, 0.0)
    threading.Timer(0.5, lambda: commit.commit_unit(out, 1, [], [], "jsonl", {})).start()
    status, gone = peers.wait_for_peers(out, 0, 2, timeout_s=2.0, poll_s=0.05)
  finally:
    heartbeat.stop()
  assert gone == {} and status["complete"]


def test_an_earlier_runs_stale_heartbeat_does_not_make_a_starting_peer_gone(tmp_path, monkeypatch):
  # A rerun into the output of a run whose process 1 was killed: its old heartbeat is stale, and
  # this run's process 1 is still loading when process 0 has nothing left to do.
  monkeypatch.setattr(peers, "_STARTED", time.time())
  out = _output(tmp_path, 2, done=(0,))
  _beat(out, 0, 0.0)
  _beat(out, 1, 120.0)
  peer = []

  def starts_late_then_commits():
    peer.append(peers.Heartbeat(out, 1, every_s=0.05))
    time.sleep(0.3)
    commit.commit_unit(out, 1, [], [], "jsonl", {})

  threading.Timer(0.6, starts_late_then_commits).start()
  try:
    status, gone = peers.wait_for_peers(out, 0, 2, timeout_s=1.5, poll_s=0.05)
  finally:
    time.sleep(0.1)
    for heartbeat in peer:
      heartbeat.stop()
  assert gone == {} and status["complete"]


def test_a_peer_that_never_beats_in_this_run_is_gone_after_the_timeout(tmp_path, monkeypatch):
  monkeypatch.setattr(peers, "_STARTED", time.time())
  out = _output(tmp_path, 2, done=(0,))
  _beat(out, 1, 120.0)  # An earlier run's.
  started = time.monotonic()
  _, gone = peers.wait_for_peers(out, 0, 2, timeout_s=1.0, poll_s=0.05)
  assert gone == {1: [1]} and 1.0 <= time.monotonic() - started < 5
