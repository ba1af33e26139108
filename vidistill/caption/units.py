"""Deterministic work units: the manifest cut in order into fixed-size pieces, dealt round-robin.

A unit is the grain of commit and of restart: it is captioned whole, written atomically, and
skipped on restart once its done record exists. Units depend only on the manifest and
`unit_size`, never on the number of processes, so a job restarted with another process count
redoes exactly the units that are not done.

The unit list is written to `<output>/units.jsonl` on the first run (a header line, then one line
per unit with the ids it spans and a fingerprint); every later run recomputes it and refuses to
continue when it differs, so one output directory never mixes two manifests.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Sequence

from absl import logging

from vidistill import fs
from vidistill.caption import commit
from vidistill.caption.manifest import Entry, Manifest
from vidistill.data import caption_output
from vidistill.data.caption_output import PLAN_FILE

PLAN_VERSION = 1


class PlanMismatchError(ValueError):
  """The output directory was started with another manifest, unit size or job settings."""


@dataclasses.dataclass(frozen=True)
class Unit:
  index: int
  start: int        # First entry (index into Manifest.entries), inclusive.
  end: int          # Last entry, exclusive.
  fingerprint: str  # sha256 over the unit's entries (id, path, window, shard offset).


def _entry_text(entry: Entry) -> str:
  r = entry.record
  return json.dumps([entry.key, r.video_id, r.path, r.start, r.end, r.extra.get("offset")],
                    ensure_ascii=True)


def make_units(manifest: Manifest, unit_size: int) -> list[Unit]:
  """Consecutive runs of `unit_size` entries in manifest order (the last may be shorter)."""
  if unit_size < 1:
    raise ValueError(f"unit_size must be >= 1, got {unit_size}")
  units = []
  for index, start in enumerate(range(0, len(manifest.entries), unit_size)):
    end = min(start + unit_size, len(manifest.entries))
    digest = hashlib.sha256()
    for entry in manifest.entries[start:end]:
      digest.update(_entry_text(entry).encode() + b"\n")
    units.append(Unit(index, start, end, digest.hexdigest()))
  return units


def assign(units: Sequence[Unit], process_index: int, process_count: int) -> list[Unit]:
  """This process's units: unit k belongs to process k % process_count (round-robin)."""
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is outside [0, process_count={process_count})")
  return [u for u in units if u.index % process_count == process_index]


def plan_lines(manifest: Manifest, units: Sequence[Unit], unit_size: int,
               job: dict) -> list[str]:
  """units.jsonl's lines: a header (sizes, overall fingerprint, job settings), one per unit."""
  overall = hashlib.sha256("".join(u.fingerprint for u in units).encode()).hexdigest()
  header = {"version": PLAN_VERSION, "input": manifest.source, "kind": manifest.kind,
            "num_entries": len(manifest.entries), "unit_size": unit_size,
            "num_units": len(units), "fingerprint": overall, "job": job}
  lines = [json.dumps(header, sort_keys=True, ensure_ascii=True)]
  for u in units:
    entries = manifest.entries[u.start:u.end]
    lines.append(json.dumps({"unit": u.index, "start": u.start, "end": u.end,
                             "first_id": entries[0].key, "last_id": entries[-1].key,
                             "fingerprint": u.fingerprint}, sort_keys=True, ensure_ascii=True))
  return lines


def write_or_check_plan(output_dir: str, manifest: Manifest, units: Sequence[Unit],
                        unit_size: int, job: dict) -> bool:
  """Writes units.jsonl if absent (True), else checks it equals this run's plan (False).

  `job` holds the settings that change what a unit's output is (checkpoint, prompts, decode,
  frames, seed, format): resuming with different ones would mix two jobs in one directory.
  Safe when several processes start at once: the first to link its file wins, the others check.
  A plan under which no unit was committed yet is replaced (True). Raises PlanMismatchError
  saying what differs and what to do.
  """
  path = os.path.join(output_dir, PLAN_FILE)
  lines = plan_lines(manifest, units, unit_size, job)
  text = "\n".join(lines) + "\n"
  if commit.create_file_once(path, text.encode()):
    return True
  with fs.open(path, encoding="utf-8") as f:
    old = f.read().splitlines()
  if _comparable(old) == _comparable(lines):
    return False
  if not caption_output.done_records(output_dir):
    # Nothing was committed under the old plan (e.g. a run with a wrong flag that failed at
    # once): there is no output to protect, so this run's plan replaces it.
    logging.warning("caption: replacing the plan in %s, under which no unit was committed (%s)",
                    path, _describe_mismatch(path, old, lines).split(". Use a new")[0])
    commit.atomic_write(path, text.encode())
    return True
  raise PlanMismatchError(_describe_mismatch(path, old, lines))


def _comparable(lines: list[str]) -> list[str]:
  """The plan without the input's spelling: the same manifest under another path is the same job."""
  if not lines:
    return lines
  header = json.loads(lines[0])
  header.pop("input", None)
  return [json.dumps(header, sort_keys=True)] + lines[1:]


def _describe_mismatch(path: str, old: list[str], new: list[str]) -> str:
  before, now = json.loads(old[0]), json.loads(new[0])
  fix = ("Use a new --output directory for a new job, or rerun with the original input and "
         "settings to finish this one.")
  if before.get("job") != now.get("job"):
    changed = sorted(k for k in set(before.get("job", {})) | set(now.get("job", {}))
                     if before.get("job", {}).get(k) != now.get("job", {}).get(k))
    return (f"{path}: this output directory was started with different job settings "
            f"({', '.join(changed)}: was {[before['job'].get(k) for k in changed]}, now "
            f"{[now['job'].get(k) for k in changed]}). {fix}")
  if before.get("unit_size") != now.get("unit_size"):
    return (f"{path}: this output directory was started with unit_size={before.get('unit_size')}, "
            f"now {now.get('unit_size')}. {fix}")
  for old_line, new_line in zip(old[1:], new[1:]):
    if old_line != new_line:
      o, n = json.loads(old_line), json.loads(new_line)
      return (f"{path}: the input differs from the manifest this output directory was started with "
              f"(was {before.get('input')!r}, {before.get('num_entries')} entries; now "
              f"{now.get('input')!r}, {now.get('num_entries')}): unit {o['unit']} spanned ids "
              f"{o['first_id']!r}..{o['last_id']!r}, now {n['first_id']!r}..{n['last_id']!r}. "
              f"{fix}")
  return (f"{path}: the input differs from the manifest this output directory was started with "
          f"(was {before.get('num_entries')} entries in {before.get('num_units')} units, now "
          f"{now.get('num_entries')} in {now.get('num_units')}). {fix}")
