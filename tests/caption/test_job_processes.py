"""Exactly once across crashes and processes: SIGKILL + restart, two processes, the CLI."""
import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from caption_fakes import CONFIG_PATH, FakeCaptioner, load_config, make_corpus
from caption_fakes import write_simple_manifest
from vidistill.caption import job
from vidistill.data import caption_output

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caption_worker.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpus")
  made = make_corpus(str(root), num_good=10)
  ids = write_simple_manifest(str(root / "manifest.jsonl"), made)
  reference = root / "reference"  # An uninterrupted single-process run to compare against.
  job.run_job(load_config("tiny"), FakeCaptioner(), str(root / "manifest.jsonl"), str(reference),
              video_root=str(root))
  return {"root": str(root), "manifest": str(root / "manifest.jsonl"), "ids": ids,
          "reference": str(reference), **made}


def _worker(corpus, out, index=0, count=1, delay=0.0):
  return subprocess.Popen(
      [sys.executable, WORKER, "job", corpus["manifest"], str(out), corpus["root"], str(index),
       str(count), str(delay)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)


def _finish(proc, timeout=120):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out
  return out


def _caption_files(out):
  folder = os.path.join(out, "captions")
  return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def _assert_exactly_once(corpus, out):
  rows = list(caption_output.iter_rows(str(out)))
  failures = caption_output.read_failures(str(out))
  counts = collections.Counter(r["video_id"] for r in rows)
  assert all(n == 2 for n in counts.values())  # Two prompts, each once.
  seen = list(counts) + [f["video_id"] for f in failures]
  assert sorted(seen) == sorted(corpus["ids"])  # Nothing missing, nothing twice.
  assert {f["kind"] for f in failures} == {"corrupt", "empty", "no_video", "missing"}
  assert caption_output.status(str(out))["complete"]


def test_sigkill_then_restart_is_exactly_once_and_identical(corpus, tmp_path):
  out = tmp_path / "out"
  proc = _worker(corpus, out, delay=0.25)
  done_dir = out / "done"
  deadline = time.monotonic() + 90
  while time.monotonic() < deadline and proc.poll() is None:
    if done_dir.is_dir() and len([n for n in os.listdir(done_dir) if n.endswith(".json")]) >= 2:
      break
    time.sleep(0.02)
  assert proc.poll() is None, "the slow job finished before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  committed = caption_output.status(str(out))
  assert 2 <= committed["units_done"] < committed["units_total"]
  _finish(_worker(corpus, out))
  summary = json.load(open(out / "metrics" / "summary-process-00000.json"))
  assert summary["units_skipped"] == committed["units_done"]
  assert summary["units_committed"] == committed["units_total"] - committed["units_done"]
  _assert_exactly_once(corpus, out)
  assert _caption_files(str(out)) == _caption_files(corpus["reference"])  # Greedy: identical.
  assert not [p for p in out.rglob("*") if ".tmp." in p.name]


def test_two_processes_caption_the_manifest_once(corpus, tmp_path):
  out = tmp_path / "out"
  procs = [_worker(corpus, out, index, 2, delay=0.02) for index in range(2)]
  for proc in procs:
    _finish(proc)
  _assert_exactly_once(corpus, out)
  assert _caption_files(str(out)) == _caption_files(corpus["reference"])
  by_process = collections.Counter(
      json.load(open(out / "done" / name))["process"] for name in os.listdir(out / "done"))
  assert by_process == {0: 2, 1: 2}  # Units 0, 2 and 1, 3: round-robin.


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cli(corpus, out, *flags, delay=0.0):
  return subprocess.Popen(
      [sys.executable, WORKER, "cli", str(delay), "--", "--config", f"{CONFIG_PATH}:tiny",
       "--checkpoint", "/ckpt/fake", "--input", corpus["manifest"], "--output", str(out),
       "--video_root", corpus["root"], *flags], env=ENV, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)


def test_cli_two_processes_with_jax_distributed(corpus, tmp_path):
  out = tmp_path / "out"
  address = f"127.0.0.1:{_free_port()}"
  procs = [_cli(corpus, out, "--coordinator_address", address, "--num_processes", "2",
                "--process_id", str(i)) for i in range(2)]
  reports = []
  for proc in procs:
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    reports.append(json.loads(stdout.strip().splitlines()[-1]))
  assert sorted(r["process"]["process_index"] for r in reports) == [0, 1]
  assert all(r["process"]["process_count"] == 2 for r in reports)
  assert sum(r["process"]["units_committed"] for r in reports) == 4
  _assert_exactly_once(corpus, out)
  assert _caption_files(str(out)) == _caption_files(corpus["reference"])


@pytest.mark.slow  # ~60 s a case.
@pytest.mark.parametrize("victim", [0, 1])  # 0 also hosts JAX's coordination service.
def test_cli_survivor_of_a_killed_peer_exits_in_bounded_time_with_code_4(corpus, tmp_path,
                                                                          victim):
  out = tmp_path / "out"

  def start(port, delay):
    return [_cli(corpus, out, "--coordinator_address", f"127.0.0.1:{port}", "--num_processes",
                 "2", "--process_id", str(i), "--config.peer_timeout_s=5", delay=delay)
            for i in range(2)]

  procs = start(_free_port(), delay=2.0)  # ~8 s a unit: the kill lands mid-job.
  deadline = time.monotonic() + 120
  while not (out / "units.jsonl").exists() and time.monotonic() < deadline:
    time.sleep(0.2)
  time.sleep(4.0)
  procs[victim].kill()
  killed = time.monotonic()
  survivor = procs[1 - victim]
  stdout, stderr = survivor.communicate(timeout=90)
  procs[victim].communicate()
  # Its own units (~16 s) plus the heartbeat timeout (5 s), not JAX's minutes-long shutdown.
  assert time.monotonic() - killed < 60
  assert survivor.returncode == 4, stderr
  assert "Traceback" not in stderr and "Fatal Python error" not in stderr
  # The victim owns units victim and victim + 2; the first may have committed before the kill.
  named = re.search(rf"process {victim} \(units \[([0-9, ]+)\]\) wrote no heartbeat", stderr)
  assert named, stderr
  assert {int(u) for u in named.group(1).split(",")} <= {victim, victim + 2}
  report = json.loads(stdout.strip().splitlines()[-1])
  assert report["processes_gone"] == [victim] and not report["output"]["complete"]
  assert report["process"]["units_committed"] == 2
  # The same command again finishes the job, exactly once and as one uninterrupted run would.
  for proc in start(_free_port(), delay=0.0):
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
  _assert_exactly_once(corpus, out)
  assert _caption_files(str(out)) == _caption_files(corpus["reference"])


def test_cli_errors_are_one_line(corpus, tmp_path):
  bad = tmp_path / "bad.csv"
  bad.write_text("id,path\nx,https://example.com/x.mp4\n")
  proc = subprocess.run(
      [sys.executable, WORKER, "cli", "0", "--", "--config", f"{CONFIG_PATH}:tiny",
       "--checkpoint", "/ckpt", "--input", str(bad), "--output", str(tmp_path / "out")],
      env=ENV, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert f"{bad}:2" in proc.stderr and "allowed_schemes" in proc.stderr
  assert "Traceback" not in proc.stderr
  # A checkpoint that is not a `vidistill train` workdir: one line naming it, no traceback.
  code = ("from vidistill.caption import command; command.run('vidistill caption', "
          f"['--config', {CONFIG_PATH + ':tiny'!r}, '--checkpoint', '/ckpt', '--input', "
          f"{corpus['manifest']!r}, '--output', {str(tmp_path / 'real')!r}])")
  proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2 and "'/ckpt' is not a workdir written by" in proc.stderr
  assert "Traceback" not in proc.stderr
