"""The processes of a multi-process captioning job: independent, each watching the others.

Units are independent, so a process never needs another to caption its own. After start-up each
process leaves JAX's distributed runtime (multihost.detach): a process that dies then takes no
other down with it (the runtime would abort them with a C++ stack, or hang at its shutdown
barrier for minutes). Instead every process writes a heartbeat file, `<output>/metrics/
alive-process-NNNNN.json`, every few seconds.

At the end each process waits until every unit is committed, saying which processes it waits
for. If a process that still owns uncommitted units has written no heartbeat for
`peer_timeout_s`, it stops waiting and exits with EXIT_PEER_LOST: its own units are committed,
and rerunning the same command on every process captions the rest.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable

from absl import logging

from vidistill import fs
from vidistill.caption import commit
from vidistill.data import caption_output

EXIT_PEER_LOST = 4  # docs/captioning.md: this process's units are committed; a peer is gone.
_STARTED = time.time()  # When this process started (imported this module), by the hosts' clock.


def heartbeat_path(output_dir: str, process_index: int) -> str:
  return os.path.join(output_dir, "metrics", f"alive-process-{process_index:05d}.json")


class Heartbeat:
  """Writes this process's heartbeat file every `every_s` seconds from a daemon thread."""

  def __init__(self, output_dir: str, process_index: int, every_s: float):
    self.path, self.every_s = heartbeat_path(output_dir, process_index), every_s
    fs.makedirs(os.path.dirname(self.path))
    self._stop = threading.Event()
    self.beat()
    self._thread = threading.Thread(target=self._run, name="caption-heartbeat", daemon=True)
    self._thread.start()

  def beat(self) -> None:
    commit.atomic_write(self.path, json.dumps({"time": time.time(), "pid": os.getpid()}).encode())

  def _run(self) -> None:
    while not self._stop.wait(self.every_s):
      try:
        self.beat()
      except OSError as e:  # A full disk: peers may take this process as gone; it goes on.
        logging.warning("caption: heartbeat %s not written: %s", self.path, e)

  def stop(self) -> None:
    self._stop.set()


def last_beats(output_dir: str, process_count: int) -> dict[int, float]:
  """{process: time of its last heartbeat} for the processes that have a heartbeat file."""
  out = {}
  for index in range(process_count):
    try:
      with fs.open(heartbeat_path(output_dir, index), encoding="utf-8") as f:
        out[index] = float(json.load(f).get("time", 0))
    except (OSError, ValueError):
      continue
  return out


def alive(output_dir: str, process_count: int, timeout_s: float,
          clock: Callable[[], float] = time.time) -> set[int]:
  """Processes whose heartbeat is younger than `timeout_s` (host clocks are assumed in sync)."""
  now = clock()
  return {p for p, beat in last_beats(output_dir, process_count).items() if now - beat < timeout_s}


def pending_units(output_dir: str) -> list[int]:
  """Units of the plan without a done record."""
  with fs.open(os.path.join(output_dir, caption_output.PLAN_FILE), encoding="utf-8") as f:
    total = int(json.loads(f.readline())["num_units"])
  done = caption_output.done_records(output_dir)
  return [u for u in range(total) if u not in done]


def wait_for_peers(output_dir: str, process_index: int, process_count: int, *, timeout_s: float,
                   poll_s: float = 1.0, report_s: float = 10.0,
                   ) -> tuple[dict[str, Any], dict[int, list[int]]]:
  """Waits until every unit is committed or a process owning uncommitted units is gone.

  Returns (caption_output.status of the output, {gone process: its uncommitted units}).
  """
  started = last_report = time.monotonic()
  while True:
    pending = pending_units(output_dir)
    if not pending:
      return caption_output.status(output_dir), {}
    owners: dict[int, list[int]] = {}
    for unit in pending:
      owners.setdefault(unit % process_count, []).append(unit)
    now, beats = time.time(), last_beats(output_dir, process_count)
    # A peer whose heartbeat is stale is gone if it beat during this run (it started, then
    # stopped); one with no heartbeat of this run yet (none, or a killed earlier run's: a rerun
    # into the same output) may still be starting, and is given `timeout_s` from now.
    gone = {p: units for p, units in owners.items() if p != process_index
            and now - beats.get(p, 0.0) >= timeout_s
            and (beats.get(p, 0.0) >= _STARTED or time.monotonic() - started >= timeout_s)}
    if gone:
      return caption_output.status(output_dir), gone
    if time.monotonic() - last_report >= report_s:
      last_report = time.monotonic()
      logging.info("caption: process %d done; waiting for %s to commit %d more unit(s): %s",
                   process_index, ", ".join(f"process {p}" for p in sorted(owners)),
                   len(pending), pending[:10])
    time.sleep(poll_s)


def lost_message(process_index: int, gone: dict[int, list[int]], timeout_s: float) -> str:
  names = ", ".join(f"process {p} (units {units[:10]})" for p, units in sorted(gone.items()))
  return (f"process {process_index}: {names} wrote no heartbeat for {timeout_s:g} s and left "
          "its units uncommitted; this process's units are committed. Rerun the same command on "
          f"every process to caption the rest (exit code {EXIT_PEER_LOST})")
