"""Puts a pipeline run's key results into README.md, so the README's table is produced, not typed.

    python tools/readme_report.py --workdir /tmp/vd [--readme README.md] [--figures docs/report]

Copies the run's claims, its adaptation and dual-encoder tables (report.md) and the scaling plot
(scaling.png, into --figures) between the README's `<!-- pipeline-report -->` markers, with the
command and the measured time of the run. Reads only the workdir's report.md / report.json /
timings.json: run `vidistill pipeline` first.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from typing import Sequence

BEGIN, END = "<!-- pipeline-report -->", "<!-- /pipeline-report -->"
_CHANCE_SHOWN = ("first_action_accuracy", "qa_multiple_choice", "retrieval_r1", "retrieval_r5")
SECTIONS = ("Claims", "Adaptation ablation", "Dual encoder by caption source")


class ReadmeError(RuntimeError):
  """The workdir holds no complete report, or the README lacks its markers."""


def sections(report_md: str, titles: Sequence[str] = SECTIONS) -> str:
  """The `## title...` sections of report.md named by `titles`, in that order, one level down."""
  parts = re.split(r"^## ", report_md, flags=re.M)
  found = {}
  for part in parts[1:]:
    heading = part.splitlines()[0]
    for title in titles:
      if heading.startswith(title):
        found[title] = "### " + part.rstrip()
  missing = [t for t in titles if t not in found]
  if missing:
    raise ReadmeError(f"report.md has no section {missing}; rerun `vidistill pipeline ... --only "
                      "report`")
  return "\n\n".join(found[t] for t in titles)


def block(workdir: str, figures: str, readme_dir: str) -> str:
  """The text that goes between the README's markers."""
  paths = {n: os.path.join(workdir, n) for n in ("report.md", "report.json", "scaling.png")}
  missing = [p for p in paths.values() if not os.path.exists(p)]
  if missing:
    raise ReadmeError(f"{workdir} has no complete pipeline report (missing {missing}); run "
                      f"`vidistill pipeline --config configs/pipeline.py --workdir {workdir}` first")
  with open(paths["report.json"], encoding="utf-8") as f:
    doc = json.load(f)
  with open(paths["report.md"], encoding="utf-8") as f:
    body = sections(f.read())
  os.makedirs(figures, exist_ok=True)
  figure = os.path.join(figures, "scaling.png")
  shutil.copyfile(paths["scaling.png"], figure)
  seeds = len(doc["seeds"])
  wall = doc.get("wall_clock_s")
  minutes = (wall or sum(doc["timings_s"].values())) / 60
  took = (f"{minutes:.1f} min wall clock, {doc.get('workers', 1)} steps at once," if wall
          else f"{minutes:.1f} min of steps")
  command = (f"vidistill pipeline --config configs/pipeline.py:{doc['variant']} --workdir DIR"
             + (f" --seeds {seeds}" if seeds > 1 else ""))
  rel = os.path.relpath(figure, readme_dir)
  return "\n".join([
      BEGIN,
      f"Made by `{command}` ({seeds} seed{'s' if seeds > 1 else ''}, {took} on "
      "this project's 2-core CPU machine), then `python tools/readme_report.py --workdir DIR`."
      " Numbers are percentages (CIDEr-D x100); the whole report is DIR/report.md. "
      "Chance levels: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in sorted(doc["chance"].items())
                                    if k in _CHANCE_SHOWN) + ".",
      "", body, "", f"![t2v R@1 against captioned clips]({rel})", END])


def update(readme: str, workdir: str, figures: str) -> None:
  with open(readme, encoding="utf-8") as f:
    text = f.read()
  if BEGIN not in text or END not in text:
    raise ReadmeError(f"{readme} lacks the markers {BEGIN} ... {END} where the report goes")
  head, rest = text.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  new = head + block(workdir, figures, os.path.dirname(os.path.abspath(readme))) + tail
  tmp = readme + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(new)
  os.replace(tmp, readme)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python tools/readme_report.py",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split("\n\n", 1)[1])
  parser.add_argument("--workdir", required=True, help="A finished `vidistill pipeline` workdir.")
  parser.add_argument("--readme", default="README.md", help="The README to update in place.")
  parser.add_argument("--figures", default="docs/report",
                      help="Where the scaling plot is copied (linked from the README).")
  args = parser.parse_args(argv)
  try:
    update(args.readme, args.workdir, args.figures)
  except ReadmeError as e:
    print(f"readme_report: {e}", file=sys.stderr)
    return 2
  print(f"updated {args.readme} from {args.workdir}/report.md")
  return 0


if __name__ == "__main__":
  sys.exit(main())
