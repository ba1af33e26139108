"""Eval results written to a remote workdir (TensorFlow's ram:// standing in for gs://)."""
import json
import os
import uuid

import ml_collections

from vidistill import fs
from vidistill.eval import report
from vidistill.eval.evaluators import common


def test_results_and_predictions_to_ram_match_local(tmp_path):
  doc = report.document(suite="s", checkpoint="ck", config=ml_collections.ConfigDict({"x": 1}),
                        results={"a": {"R@1": 12.5}}, evaluators={"a": {"kind": "retrieval"}},
                        started="t0", complete=True)
  remote = f"ram://eval-{uuid.uuid4().hex}/eval/100"
  json_path, md_path = report.write(remote, doc)
  assert (json_path, md_path) == (f"{remote}/results.json", f"{remote}/results.md")
  assert not os.path.exists(remote)
  local_json, local_md = report.write(str(tmp_path), doc)
  with fs.open(json_path, encoding="utf-8") as f:
    assert json.load(f) == doc
  with fs.open(md_path, "rb") as f, open(local_md, "rb") as g:
    assert f.read() == g.read()
  assert sorted(fs.listdir(remote)) == ["results.json", "results.md"]  # No .partial left.
  # Written again (a rerun): replaced, not appended to.
  report.write(remote, doc)
  with fs.open(json_path, "rb") as f, open(local_json, "rb") as g:
    assert f.read() == g.read()
  rows = [{"id": "v1", "caption": "a dog"}]
  path = common.write_predictions(os.path.join(remote, "a"), rows)
  with fs.open(path, encoding="utf-8") as f:
    assert [json.loads(line) for line in f] == rows
