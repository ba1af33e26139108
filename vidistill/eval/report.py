"""Evaluation results on disk: WORKDIR/results.json (every number) and results.md (a table).

results.json:
  {"suite": "retrieval", "checkpoint": "/ckpt/dual_encoder", "complete": true,
   "started": "2025-01-01T12:00:00+00:00", "finished": "...",
   "results": {"msrvtt_1ka": {"t2v/R@1": 43.2, ...}, ...},
   "evaluators": {"msrvtt_1ka": {"kind": "retrieval", "seconds": 12.3}},
   "config": {... the whole suite config ...}, "vidistill_version": "0.1.0"}
It is rewritten after every evaluator (`complete` false until the last one is done), so a long
suite that stops half way keeps what it measured. Numbers are on the papers' scale
(docs/metrics.md); a non-finite value is written as null.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from typing import Any, Mapping

from vidistill import __version__
from vidistill import fs

import ml_collections
import numpy as np

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _number(value: Any) -> float | int | None:
  """A metric as JSON: ints stay ints (counts), floats are floats, NaN/inf become None."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
    raise TypeError(f"metric value {value!r} is not a number")
  if isinstance(value, (int, np.integer)):
    return int(value)
  value = float(value)
  return value if math.isfinite(value) else None


def document(*, suite: str, checkpoint: str, config: ml_collections.ConfigDict,
             results: Mapping[str, Mapping[str, Any]], evaluators: Mapping[str, Mapping[str, Any]],
             started: str, complete: bool) -> dict[str, Any]:
  """The results.json object (see the module docstring)."""
  return {
      "suite": suite, "checkpoint": checkpoint, "complete": complete, "started": started,
      "finished": now() if complete else None,
      "results": {name: {k: _number(v) for k, v in metrics.items()}
                  for name, metrics in results.items()},
      "evaluators": {name: dict(info) for name, info in evaluators.items()},
      "config": json.loads(config.to_json_best_effort()),
      "vidistill_version": __version__,
  }


def _format(value: float | int | None) -> str:
  if value is None:
    return "n/a"
  if isinstance(value, int):
    return str(value)
  return f"{value:.2f}"


def markdown(doc: Mapping[str, Any]) -> str:
  """results.md: a heading with the suite and checkpoint, one `metric | value` table per
  evaluator."""
  state = "" if doc["complete"] else " (incomplete: the suite did not finish)"
  lines = [f"# Evaluation: {doc['suite']}{state}", "",
           f"- checkpoint: `{doc['checkpoint']}`", f"- started: {doc['started']}",
           f"- finished: {doc['finished'] or '-'}", f"- vidistill {doc['vidistill_version']}",
           "", "Recalls and accuracies in %, captioning scores x100 (coco-caption), ranks 1-based;"
           " docs/metrics.md has the protocols.", ""]
  for name, metrics in doc["results"].items():
    info = doc["evaluators"].get(name, {})
    lines += [f"## {name} ({info.get('kind', '?')}, {info.get('seconds', 0):.1f} s)", "",
              "| metric | value |", "| --- | ---: |"]
    lines += [f"| {k} | {_format(v)} |" for k, v in metrics.items()]
    lines.append("")
  return "\n".join(lines)


def console_table(doc: Mapping[str, Any]) -> str:
  """The same numbers as aligned plain text, for the terminal."""
  rows = [(name, k, _format(v)) for name, metrics in doc["results"].items()
          for k, v in metrics.items()]
  if not rows:
    return f"{doc['suite']}: no results"
  widths = [max(len(r[i]) for r in rows + [("evaluator", "metric", "value")]) for i in range(3)]
  header = ("evaluator", "metric", "value")
  out = [f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:>{widths[2]}}",
         "  ".join("-" * w for w in widths)]
  previous = None
  for name, metric, value in rows:
    shown = name if name != previous else ""
    previous = name
    out.append(f"{shown:<{widths[0]}}  {metric:<{widths[1]}}  {value:>{widths[2]}}")
  return "\n".join(out)


def write(workdir: str, doc: Mapping[str, Any]) -> tuple[str, str]:
  """Writes results.json and results.md into `workdir` (atomically each); returns their paths."""
  fs.makedirs(workdir)
  paths = []
  for name, text in ((RESULTS_JSON, json.dumps(doc, indent=2, allow_nan=False) + "\n"),
                     (RESULTS_MD, markdown(doc) + "\n")):
    path = os.path.join(workdir, name)
    # On gs:// the replace is a copy then a delete; the copied object appears whole.
    with fs.open(path + ".partial", "w", encoding="utf-8") as f:
      f.write(text)
    fs.replace(path + ".partial", path)
    paths.append(path)
  return paths[0], paths[1]
