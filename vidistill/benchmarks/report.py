"""Benchmark results: one `Figure` per measured ratio, written as results.json and results.md.

Every figure is `value / baseline`, both measured in the same run on the same machine; a goal is
a bound on that ratio (`ratio >= goal`, or `<=` when `lower_is_better`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from typing import Any, Sequence

import jax


@dataclasses.dataclass
class Figure:
  """One row of the table: `ratio = value / baseline` (units say what the two numbers are)."""
  benchmark: str
  measure: str  # What `value` is, e.g. "VLM train step FLOP/s (float32)".
  value: float
  baseline_name: str  # What `baseline` is, e.g. "float32 matmul peak".
  baseline: float
  unit: str = ""
  goal: float | None = None  # Bound on `ratio`; None: reported, no goal.
  lower_is_better: bool = False
  note: str = ""  # What limits the figure / which config.

  @property
  def ratio(self) -> float:
    return self.value / self.baseline if self.baseline else math.nan

  @property
  def met(self) -> bool | None:
    if self.goal is None:
      return None
    return self.ratio <= self.goal if self.lower_is_better else self.ratio >= self.goal

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out.update(ratio=self.ratio, met=self.met)
    return out


@dataclasses.dataclass
class Result:
  """What one benchmark returns: its figures and free-form details (sizes, raw medians)."""
  name: str
  figures: list[Figure]
  details: dict[str, Any] = dataclasses.field(default_factory=dict)


def machine() -> dict[str, Any]:
  return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
          "cpu_count": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": jax.device_count(), "device_kind": jax.devices()[0].device_kind}


def _fmt(x: float) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return str(x)
  return f"{x:.3g}"


def markdown(results: Sequence[Result], *, command: str = "") -> str:
  """The table docs/performance.md shows: one row per figure."""
  lines = []
  if command:
    lines += [f"`{command}`", ""]
  m = machine()
  lines += [f"Machine: {m['processor']}, {m['cpu_count']} CPU cores, JAX {m['jax']} "
            f"({m['backend']}, {m['devices']} devices).", ""]
  lines += ["| benchmark | measure | value | baseline | ratio | goal | met | note |",
            "|---|---|---|---|---|---|---|---|"]
  for r in results:
    for f in r.figures:
      goal = "" if f.goal is None else ("<= " if f.lower_is_better else ">= ") + _fmt(f.goal)
      met = {None: "", True: "yes", False: "**no**"}[f.met]
      lines.append(f"| {f.benchmark} | {f.measure} | {_fmt(f.value)} {f.unit} | "
                   f"{f.baseline_name}: {_fmt(f.baseline)} | {_fmt(f.ratio)} | {goal} | {met} | "
                   f"{f.note} |")
  return "\n".join(lines) + "\n"


def write(results: Sequence[Result], out_dir: str, *, command: str = "", mode: str = "short"
          ) -> tuple[str, str]:
  """Writes `out_dir/results.json` and `out_dir/results.md`; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  payload = {"command": command, "mode": mode, "machine": machine(),
             "results": [{"name": r.name, "figures": [f.as_dict() for f in r.figures],
                          "details": r.details} for r in results]}
  json_path = os.path.join(out_dir, "results.json")
  md_path = os.path.join(out_dir, "results.md")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(payload, f, indent=1, sort_keys=True, default=_json_default)
  with open(md_path, "w", encoding="utf-8") as f:
    f.write(markdown(results, command=command))
  return json_path, md_path


def _json_default(x: Any) -> Any:
  if hasattr(x, "tolist"):
    return x.tolist()
  return str(x)
