"""Work units: cut in manifest order, dealt round-robin, pinned in units.jsonl across restarts."""
import json
import threading

import pytest

from vidistill.caption import commit
from vidistill.caption import units as units_lib
from vidistill.data import caption_output
from vidistill.caption.manifest import Entry, Manifest
from vidistill.data.records import VideoRecord

JOB = {"checkpoint": "c", "prompts": {"short": "caption en:"}}


def _manifest(ids, source="m.jsonl"):
  return Manifest("videos", tuple(Entry(i, VideoRecord(video_id=i, path=f"{i}.mp4"), f"m:{n}")
                                  for n, i in enumerate(ids)), source)


@pytest.mark.parametrize("n,size", [(0, 3), (1, 3), (9, 3), (10, 3), (10, 1), (5, 100)])
def test_units_cover_manifest_in_order(n, size):
  units = units_lib.make_units(_manifest([f"v{i}" for i in range(n)]), size)
  assert [u.index for u in units] == list(range(len(units)))
  covered = [i for u in units for i in range(u.start, u.end)]
  assert covered == list(range(n))  # In order, each entry once.
  assert all(u.end - u.start == size for u in units[:-1]) and all(u.end > u.start for u in units)


def test_fingerprints_depend_on_content_only():
  a = units_lib.make_units(_manifest(["a", "b", "c"]), 2)
  again = units_lib.make_units(_manifest(["a", "b", "c"], source="elsewhere.jsonl"), 2)
  changed = units_lib.make_units(_manifest(["a", "b", "x"]), 2)
  assert a == again
  assert a[0].fingerprint == changed[0].fingerprint and a[1].fingerprint != changed[1].fingerprint


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_assignment_partitions_units(count):
  units = units_lib.make_units(_manifest([f"v{i}" for i in range(23)]), 2)
  shares = [units_lib.assign(units, p, count) for p in range(count)]
  indices = sorted(u.index for share in shares for u in share)
  assert indices == [u.index for u in units]  # Every unit once, over all processes.
  assert [u.index for u in shares[0]] == list(range(0, len(units), count))
  with pytest.raises(ValueError, match="outside"):
    units_lib.assign(units, count, count)


def test_plan_written_once_then_checked(tmp_path):
  m = _manifest(["a", "b", "c"])
  units = units_lib.make_units(m, 2)
  assert units_lib.write_or_check_plan(str(tmp_path), m, units, 2, JOB)
  lines = (tmp_path / "units.jsonl").read_text().splitlines()
  header = json.loads(lines[0])
  assert header["num_entries"] == 3 and header["num_units"] == 2 and header["job"] == JOB
  assert [json.loads(l)["first_id"] for l in lines[1:]] == ["a", "c"]
  assert not units_lib.write_or_check_plan(str(tmp_path), m, units, 2, JOB)
  # The same manifest given by another path is the same job.
  moved = _manifest(["a", "b", "c"], source="/other/m.jsonl")
  assert not units_lib.write_or_check_plan(str(tmp_path), moved, units, 2, JOB)


@pytest.mark.parametrize("change,match", [
    (dict(ids=["a", "b", "x"]), r"unit 1 spanned ids 'c'..'c', now 'x'..'x'"),
    (dict(ids=["a", "b", "c", "d", "e"]), "3 entries.*now.*5"),
    (dict(ids=["a", "b"]), "3 entries in 2 units, now 2 in 1"),
    (dict(size=3), "unit_size=2, now 3"),
    (dict(job={"checkpoint": "other", "prompts": {"short": "caption en:"}}), "checkpoint"),
])
def test_plan_mismatch_is_an_error(tmp_path, change, match):
  m = _manifest(["a", "b", "c"])
  units_lib.write_or_check_plan(str(tmp_path), m, units_lib.make_units(m, 2), 2, JOB)
  commit.make_dirs(str(tmp_path))
  commit.commit_unit(str(tmp_path), 0, [], [], "jsonl", {})  # Output worth protecting.
  m2 = _manifest(change.get("ids", ["a", "b", "c"]))
  size = change.get("size", 2)
  with pytest.raises(units_lib.PlanMismatchError, match=match) as info:
    units_lib.write_or_check_plan(str(tmp_path), m2, units_lib.make_units(m2, size), size,
                                  change.get("job", JOB))
  assert "new --output" in str(info.value)


def test_a_plan_without_committed_units_is_replaced(tmp_path):
  m = _manifest(["a", "b", "c"])
  units_lib.write_or_check_plan(str(tmp_path), m, units_lib.make_units(m, 2), 2,
                                {**JOB, "checkpoint": "wrong"})
  assert units_lib.write_or_check_plan(str(tmp_path), m, units_lib.make_units(m, 2), 2, JOB)
  header = json.loads(open(tmp_path / caption_output.PLAN_FILE).readline())
  assert header["job"] == JOB


def test_racing_processes_write_one_plan(tmp_path):
  m = _manifest([f"v{i}" for i in range(50)])
  units = units_lib.make_units(m, 4)
  created, errors = [], []

  def start():
    try:
      created.append(units_lib.write_or_check_plan(str(tmp_path), m, units, 4, JOB))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=start) for _ in range(6)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors and sorted(created) == [False] * 5 + [True]
  assert [p.name for p in tmp_path.iterdir()] == ["units.jsonl"]  # No temp file left behind.
