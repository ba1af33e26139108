"""Tests for vidistill/benchmarks/report.py: ratios, goals, the JSON and markdown outputs."""
import json
import math

from vidistill.benchmarks import report


def test_ratio_and_goal_both_directions():
  up = report.Figure("b", "m", 6.0, "base", 4.0, goal=1.5)
  assert up.ratio == 1.5 and up.met is True
  assert report.Figure("b", "m", 5.0, "base", 4.0, goal=1.5).met is False
  down = report.Figure("b", "m", 1.0, "base", 4.0, goal=0.5, lower_is_better=True)
  assert down.met is True
  assert report.Figure("b", "m", 1.0, "base", 4.0).met is None
  assert math.isnan(report.Figure("b", "m", 1.0, "base", 0.0).ratio)


def test_write_json_and_markdown(tmp_path):
  results = [report.Result("x", [report.Figure("x", "speed", 3.0, "baseline", 2.0, unit="it/s",
                                               goal=2.0, note="n")], {"k": (1, 2)})]
  json_path, md_path = report.write(results, str(tmp_path / "out"), command="cmd", mode="short")
  data = json.load(open(json_path))
  fig = data["results"][0]["figures"][0]
  assert fig["ratio"] == 1.5 and fig["met"] is False and data["command"] == "cmd"
  assert data["results"][0]["details"]["k"] == [1, 2]
  table = open(md_path).read()
  assert "`cmd`" in table
  row = [l for l in table.splitlines() if l.startswith("| x |")][0]
  assert "| 1.5 |" in row and "**no**" in row and ">= 2" in row
