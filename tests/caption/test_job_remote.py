"""The captioning job writing to a remote directory: TensorFlow's in-memory `ram://` file system
stands in for gs:// (both go through vidistill.fs -> tf.io.gfile, with no rename)."""
import os
import uuid

import pytest

from caption_fakes import FakeCaptioner, load_config, make_corpus, write_simple_manifest
from vidistill import fs
from vidistill.caption import commit
from vidistill.caption import job
from vidistill.data import caption_output


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpus")
  made = make_corpus(str(root), num_good=4)
  ids = write_simple_manifest(str(root / "manifest.jsonl"), made)
  return {"root": str(root), "manifest": str(root / "manifest.jsonl"), "ids": ids, **made}


def _run(corpus, out, captioner=None):
  return job.run_job(load_config("tiny"), captioner or FakeCaptioner(), corpus["manifest"], out,
                     video_root=corpus["root"])


def _caption_bytes(out):
  folder = os.path.join(out, "captions")
  names = sorted(fs.listdir(folder))
  return {n: fs.open(os.path.join(folder, n), "rb").read() for n in names}


def test_ram_output_matches_local_and_restart_redoes_only_uncommitted_units(corpus, tmp_path):
  local = str(tmp_path / "local")
  remote = f"ram://caption-{uuid.uuid4().hex}/out"
  _run(corpus, local)
  summary = _run(corpus, remote)
  assert (summary.units_total, summary.units_committed) == (2, 2)
  assert not os.path.exists(remote) and not os.path.exists("ram:")  # Nothing landed on disk.
  whole = _caption_bytes(remote)
  assert whole == _caption_bytes(local) and len(whole) == 2
  assert sorted(fs.listdir(os.path.join(remote, "done"))) == ["unit-000000.json",
                                                               "unit-000001.json"]
  assert sorted(r["video_id"] for r in caption_output.iter_rows(remote)) == sorted(
      list(corpus["good"]) * 2)
  assert caption_output.status(remote)["complete"]
  assert fs.isfile(os.path.join(remote, "metrics", "summary-process-00000.json"))
  assert fs.isfile(os.path.join(remote, "units.jsonl"))

  again = _run(corpus, remote)
  assert (again.units_skipped, again.units_committed) == (2, 0)

  # A crash after unit 1's files were copied into place but before its done record, with a
  # temp object left behind: the restart redoes unit 1 only and deletes the temp.
  fs.remove(commit.done_path(remote, 1))
  stale = os.path.join(remote, "captions", "unit-000001.jsonl.tmp.123.abcd")
  with fs.open(stale, "w") as f:
    f.write("partial")
  redo = _run(corpus, remote)
  assert (redo.units_skipped, redo.units_committed) == (1, 1)
  assert not fs.exists(stale)
  assert _caption_bytes(remote) == whole
  assert not [n for n in fs.listdir(os.path.join(remote, "done")) if ".tmp." in n]
