"""Unit commits: files under unit-index names, the done record as the only commit point."""
import json
import os

from vidistill.caption import commit
from vidistill.data import caption_output
from vidistill.data import caption_rows

ROWS = [{"video_id": "../../x", "caption": "a", "sample": 0},
        {"video_id": "é/🎬", "caption": "b", "sample": 0}]
FAILURES = [{"video_id": "bad", "kind": "corrupt", "reason": "garbage"}]


def _commit(out, index=3, rows=ROWS):
  commit.make_dirs(out)
  return commit.commit_unit(out, index, rows, FAILURES, "jsonl", {"videos": len(rows), "failed": 1})


def test_commit_writes_files_then_done_record(tmp_path):
  out = str(tmp_path)
  record = _commit(out)
  assert record == caption_output.read_done(out, 3)
  assert record["captions"] == {"file": "captions/unit-000003.jsonl", "rows": 2,
                                "bytes": os.path.getsize(tmp_path / "captions/unit-000003.jsonl")}
  assert record["failures"]["rows"] == 1 and record["videos"] == 2 and record["format"] == "jsonl"
  assert list(caption_rows.read_rows(str(tmp_path / "captions/unit-000003.jsonl"))) == ROWS
  assert list(caption_rows.read_rows(str(tmp_path / "failures/unit-000003.jsonl"))) == FAILURES
  names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
  assert names == ["captions/unit-000003.jsonl", "done/unit-000003.json",
                   "failures/unit-000003.jsonl"]  # Ids never reach a file name; no temps left.


def test_files_without_done_record_are_not_done(tmp_path):
  """A crash between renaming the files and writing the done record: the unit is redone."""
  out = str(tmp_path)
  _commit(out)
  os.unlink(commit.done_path(out, 3))
  assert caption_output.read_done(out, 3) is None and caption_output.done_records(out) == {}
  _commit(out, rows=ROWS[:1])  # The redo replaces the orphaned files.
  assert caption_output.read_done(out, 3)["captions"]["rows"] == 1
  assert len(list(caption_rows.read_rows(str(tmp_path / "captions/unit-000003.jsonl")))) == 1


def test_damaged_or_missing_files_invalidate_the_record(tmp_path):
  out = str(tmp_path)
  _commit(out, 1)
  _commit(out, 2)
  with open(commit.captions_path(out, 1, "jsonl"), "a") as f:
    f.write("half a line")
  os.unlink(commit.failures_path(out, 2))
  assert caption_output.read_done(out, 1) is None and caption_output.read_done(out, 2) is None
  _commit(out, 4)
  with open(commit.done_path(out, 4), "w") as f:
    f.write("{not json")
  assert caption_output.done_records(out) == {}


def test_done_records_by_index(tmp_path):
  out = str(tmp_path)
  for index in (0, 7, 12):
    _commit(out, index)
  assert sorted(caption_output.done_records(out)) == [0, 7, 12]


def test_remove_stale_temps_only_for_given_units(tmp_path):
  out = str(tmp_path)
  commit.make_dirs(out)
  stale = [os.path.join(out, "captions", "unit-000001.jsonl.tmp.99.ab"),
           os.path.join(out, "done", "unit-000001.json.tmp.99.cd")]
  other = os.path.join(out, "captions", "unit-000002.jsonl.tmp.99.ef")
  for path in stale + [other]:
    open(path, "w").close()
  assert commit.remove_stale_temps(out, [1]) == 2
  assert not any(os.path.exists(p) for p in stale) and os.path.exists(other)


def test_atomic_write_and_create_once(tmp_path):
  path = str(tmp_path / "a.json")
  commit.atomic_write(path, b"1")
  commit.atomic_write(path, b"2")
  assert open(path).read() == "2"
  assert commit.create_file_once(str(tmp_path / "sub" / "b"), b"first")
  assert not commit.create_file_once(str(tmp_path / "sub" / "b"), b"second")
  assert open(tmp_path / "sub" / "b").read() == "first"
  assert sorted(os.listdir(tmp_path)) == ["a.json", "sub"] and os.listdir(tmp_path / "sub") == ["b"]
  assert json.loads(open(path).read()) == 2
