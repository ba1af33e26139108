"""Atomic unit commits and the done log: what makes the job exactly-once across crashes.

Output layout (every name comes from the unit index, never from a video id or path):
  <output>/units.jsonl                      the unit plan (units.py)
  <output>/captions/unit-000012.jsonl       caption rows (.tfrecord / .array_record by option)
  <output>/failures/unit-000012.jsonl       videos that could not be read, with the reason
  <output>/done/unit-000012.json            the done record: the unit's commit point

Committing a unit: write both files under temp names in their final folders, fsync them, rename
them into place, fsync the folders, then write the done record the same way. A unit is done iff
its done record exists (and the files it lists have the sizes it records). A crash before the done
record leaves at most files that no reader trusts and a restart overwrites; a crash after it
leaves a finished unit that the restart skips. Renames within one folder are atomic on POSIX file
systems (a local disk, NFS).

The reading side (layout names, done records) is vidistill/data/caption_output.py.

The output directory may also be a bucket (`gs://...`, through vidistill.fs and tf.io.gfile).
GCS has no atomic rename: the "rename" is copy-then-delete, but an object appears whole or not at
all, so "write temp, copy to the final name, write the done record last" keeps exactly-once: the
final name never holds part of a file, and the done record (itself one whole object) exists only
after both files do. A crash between the copy and the delete leaves a temp object, which
`remove_stale_temps` deletes on restart. fsyncs are no-ops there (an object is durable once
closed).
"""
from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any, Iterable, Mapping

from vidistill import fs
from vidistill.data import caption_rows
# The layout and the done records are read by the captions' consumers too (data/caption_output.py).
from vidistill.data.caption_output import CAPTIONS, DONE, FAILURES, done_path, unit_name

def captions_path(output_dir: str, index: int, fmt: str) -> str:
  return os.path.join(output_dir, CAPTIONS, unit_name(index) + caption_rows.EXTENSIONS[fmt])


def failures_path(output_dir: str, index: int) -> str:
  return os.path.join(output_dir, FAILURES, unit_name(index) + ".jsonl")


def make_dirs(output_dir: str) -> None:
  for sub in (CAPTIONS, FAILURES, DONE):
    fs.makedirs(os.path.join(output_dir, sub))


def _temp_name(path: str) -> str:
  return f"{path}.tmp.{os.getpid()}.{secrets.token_hex(4)}"


def _write_temp(path: str, data: bytes) -> str:
  """`data` in a new fsynced temp file beside `path`; returns the temp file's name."""
  temp = _temp_name(path)
  with fs.open(temp, "wb") as f:
    f.write(data)
    fs.fsync_file(f)
  return temp


def atomic_write(path: str, data: bytes) -> None:
  """Replaces `path` with `data` so that a reader sees the old file or the new one, never a part."""
  fs.replace(_write_temp(path, data), path)
  fs.fsync_dir(os.path.dirname(path) or ".")


def create_file_once(path: str, data: bytes) -> bool:
  """Creates `path` with `data` unless it exists (then False).

  Atomic among racing processes on a local file system (a hard link fails if `path` exists, unlike
  rename: the first writer wins). On GCS the check and the copy are two requests, so processes
  starting at the same instant may each "create" it; the plan they write is the same bytes for
  the same job, and a later start with other settings still finds and checks the file.
  """
  fs.makedirs(os.path.dirname(path) or ".")
  temp = _write_temp(path, data)
  try:
    created = fs.copy_new(temp, path)
  finally:
    fs.remove(temp)
  fs.fsync_dir(os.path.dirname(path) or ".")
  return created


def commit_unit(output_dir: str, index: int, rows: Iterable[Mapping[str, Any]],
                failures: Iterable[Mapping[str, Any]], fmt: str,
                info: Mapping[str, Any]) -> dict[str, Any]:
  """Writes a unit's captions and failures and then its done record; returns the record.

  `info` (fingerprint, counts, process, timings) is stored in the done record as is.
  """
  final = {"captions": captions_path(output_dir, index, fmt),
           "failures": failures_path(output_dir, index)}
  temps = {k: _temp_name(p) for k, p in final.items()}
  counts = {"captions": caption_rows.write_rows(temps["captions"], rows, fmt),
            "failures": caption_rows.write_rows(temps["failures"], failures, "jsonl")}
  files = {}
  for key, path in final.items():
    # On GCS a copy-then-delete: `path` appears whole; the done record below is the commit point.
    fs.replace(temps[key], path)
    sub = CAPTIONS if key == "captions" else FAILURES
    files[key] = {"file": os.path.join(sub, os.path.basename(path)), "rows": counts[key],
                  "bytes": fs.getsize(path)}
  for sub in (CAPTIONS, FAILURES):
    fs.fsync_dir(os.path.join(output_dir, sub))
  record = {"unit": index, "format": fmt, **files, **dict(info), "committed_at": time.time()}
  atomic_write(done_path(output_dir, index), json.dumps(record, sort_keys=True).encode())
  return record


def remove_stale_temps(output_dir: str, indices: Iterable[int]) -> int:
  """Deletes temp files a crashed run left for these units (only this process's units, so a
  live process's temps are never touched); returns how many."""
  removed = 0
  for index in indices:
    for sub in (CAPTIONS, FAILURES, DONE):
      for path in fs.glob(os.path.join(output_dir, sub, unit_name(index) + ".*.tmp.*")):
        fs.remove(path)
        removed += 1
  return removed
