"""The pseudo-captioning job: the adapted video VLM labels millions of unlabeled videos.

One call of `run_job` is one process's share of the work:

  manifest ──► units (fixed size, manifest order) ──► this process's units (k % count)
      ──► skip units with a done record ──► prefetch threads decode + sample frames ahead
      ──► batches of `batch_size` videos ──► captioner, once per prompt ──► rows
      ──► unit complete: commit captions + failures atomically, then its done record

Exactly once: a unit's rows become visible only through its done record, written after its files
are in place (commit.py), and a restarted job redoes every unit without one. Deterministic: the
units, the batches inside a unit (bad videos are dropped the same way on every run) and the
sampling seeds (config.seed, unit, batch, prompt) do not depend on timing or process count, so a
restarted or re-sharded job writes the same captions; greedy and beam captions also do not depend
on the batch size.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import time
from typing import Any, Iterator, Sequence

import ml_collections
import numpy as np
from absl import logging

from vidistill import fs
from vidistill.caption import commit
from vidistill.caption import frames as frames_lib
from vidistill.caption import progress as progress_lib
from vidistill.caption import units as units_lib
from vidistill.caption.captioner import Captioner, count_tokens
from vidistill.caption.manifest import Entry, Manifest, load_manifest
from vidistill.config_args import ConfigError, check_choice, check_positive
from vidistill.data import caption_output, caption_rows, prefetch


class CaptionerError(RuntimeError):
  """The captioner returned something other than the protocol promises."""


@dataclasses.dataclass
class JobSummary:
  """What one process did in this run (`results.status` counts the whole output directory)."""
  process_index: int
  process_count: int
  units_total: int          # In the whole plan.
  units_mine: int           # Assigned to this process.
  units_skipped: int        # Already done when this run started.
  units_committed: int      # Committed by this run.
  videos_done: int          # Captioned by this run.
  videos_failed: int        # Recorded as failures by this run.
  videos_skipped: int       # In skipped units.
  failures_by_kind: dict[str, int]
  elapsed_s: float
  videos_per_s: float
  tokens_per_s: float
  input_wait_fraction: float  # Share of the run the captioner waited for decoded frames.

  def as_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad field."""
  check_positive(config, "unit_size", "batch_size", "num_frames", "resolution", "num_samples",
                 "prefetch.num_workers", "prefetch.buffer")
  check_choice(config, "output_format", caption_rows.FORMATS)
  check_choice(config, "decode.method", ("greedy", "beam", "sample"))
  check_choice(config, "on_duplicate", ("error", "skip"))
  if not config.prompts:
    raise ConfigError("config.prompts is empty; give at least one {name: prompt text}")
  for name, text in config.prompts.items():
    if not isinstance(text, str) or not text.strip():
      raise ConfigError(f"config.prompts.{name}={text!r} must be non-empty text")
  if config.decode.method != "sample" and config.num_samples != 1:
    raise ConfigError(f"config.num_samples={config.num_samples} needs decode.method='sample' "
                      f"(decode.method={config.decode.method!r} gives one caption per prompt)")


def prompt_items(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """(name, text) in name order: ConfigDict sorts its keys, so this order is the config's."""
  return sorted((str(k), str(v)) for k, v in config.prompts.items())


def job_settings(config: ml_collections.ConfigDict, captioner: Captioner) -> dict[str, Any]:
  """The settings that change a unit's output; units.jsonl pins them for restarts."""
  return {"checkpoint": captioner.name, "decode": _jsonable(captioner.decode_settings),
          "prompts": dict(prompt_items(config)), "num_samples": int(config.num_samples),
          "num_frames": int(config.num_frames), "resolution": int(config.resolution),
          "seed": int(config.seed), "output_format": config.output_format}


def _jsonable(value: Any) -> Any:
  return json.loads(json.dumps(value, sort_keys=True, default=str))


def batch_seed(seed: int, unit: int, batch: int, prompt: int) -> int:
  """The captioner's rng seed for one (unit, batch, prompt): fixed by position, not by timing."""
  return int(np.random.SeedSequence([seed, unit, batch, prompt]).generate_state(1)[0] >> 1)


def run_job(config: ml_collections.ConfigDict, captioner: Captioner, input_spec: str,
            output_dir: str, *, video_root: str | None = None, process_index: int = 0,
            process_count: int = 1) -> JobSummary:
  """Captions this process's not-yet-done units of `input_spec` into `output_dir`.

  Args:
    config: a configs/caption/pseudo_caption.py config.
    captioner: the model (see captioner.py); `load_captioner` makes the real one.
    input_spec: manifest file, glob / folder of videos, or example shards (manifest.py).
    output_dir: created if needed; holds units.jsonl, captions/, failures/, done/, metrics/.
    video_root: relative paths resolve against it (default: config.video_root).
    process_index, process_count: this process among all (jax.process_index() / process_count()
      in a multi-host job; plain numbers when processes are started by hand).
  Returns:
    This process's summary of this run (also written to metrics/summary-process-NNNNN.json).
  """
  check_config(config)
  started = time.monotonic()
  root = config.video_root if video_root is None else video_root
  manifest = load_manifest(input_spec, kind=config.input_kind,
                           manifest_format=config.manifest_format, video_root=root,
                           allowed_schemes=tuple(config.allowed_schemes),
                           on_duplicate=config.on_duplicate)
  units = units_lib.make_units(manifest, config.unit_size)
  fs.makedirs(output_dir)
  commit.make_dirs(output_dir)
  units_lib.write_or_check_plan(output_dir, manifest, units, config.unit_size,
                                job_settings(config, captioner))
  mine = units_lib.assign(units, process_index, process_count)
  done = {u.index for u in mine if caption_output.read_done(output_dir, u.index) is not None}
  pending = [u for u in mine if u.index not in done]
  skipped = [u for u in mine if u.index in done]
  commit.remove_stale_temps(output_dir, [u.index for u in pending])
  logging.info("caption: process %d/%d, %d entries in %d units; %d units mine, %d already done, "
               "%d to do", process_index, process_count, len(manifest.entries), len(units),
               len(mine), len(skipped), len(pending))

  progress = progress_lib.JobMeter(output_dir, process_index, units_total=len(pending),
                                   videos_total=sum(u.end - u.start for u in pending),
                                   every_s=config.progress_every_s)
  unit_runner = _UnitRunner(config, captioner, output_dir, process_index, progress)
  stream = _timed(_frame_stream(config, manifest, pending, root), progress)
  for unit, items in itertools.groupby(stream, key=lambda pair: pair[0][0]):
    unit_runner(unit, ((entry, result) for (_, entry), result in items))
    progress.maybe_report()
  final = progress.maybe_report(force=True)

  summary = JobSummary(
      process_index=process_index, process_count=process_count, units_total=len(units),
      units_mine=len(mine), units_skipped=len(skipped), units_committed=progress.units_done,
      videos_done=progress.videos_done, videos_failed=progress.videos_failed,
      videos_skipped=sum(u.end - u.start for u in skipped),
      failures_by_kind=dict(sorted(progress.failures_by_kind.items())),
      elapsed_s=round(time.monotonic() - started, 3), videos_per_s=final["videos_per_s"],
      tokens_per_s=final["tokens_per_s"], input_wait_fraction=final["input_wait_fraction"])
  path = os.path.join(output_dir, "metrics", f"summary-process-{process_index:05d}.json")
  commit.atomic_write(path, json.dumps(summary.as_dict(), indent=1, sort_keys=True).encode())
  logging.info("caption: process %d done: %d videos captioned, %d failed %s, %d skipped (%d units "
               "already done); %.2f videos/s, %.1f tokens/s over %.1f s", process_index,
               summary.videos_done, summary.videos_failed, summary.failures_by_kind,
               summary.videos_skipped, summary.units_skipped, summary.videos_per_s,
               summary.tokens_per_s, summary.elapsed_s)
  return summary


def _frame_stream(config: ml_collections.ConfigDict, manifest: Manifest,
                  pending: Sequence[units_lib.Unit], video_root: str):
  """((unit, entry), frames | exception) for every pending entry, decoded ahead on threads."""
  items = ((unit, manifest.entries[i]) for unit in pending for i in range(unit.start, unit.end))
  if manifest.kind == "shards":
    # One worker keeps shard reads sequential (ShardCursor is a forward-only reader).
    load, workers = frames_lib.ShardCursor(config.num_frames, config.resolution), 1
  else:
    load = functools.partial(frames_lib.load_video, video_root=video_root,
                             num_frames=config.num_frames, resolution=config.resolution,
                             extensions=tuple(config.video_extensions),
                             timeout_s=config.remote_timeout_s)
    workers = config.prefetch.num_workers
  return prefetch.prefetch_map(lambda item: load(item[1]), items, num_workers=workers,
                               buffer=config.prefetch.buffer)


def _timed(iterator: Iterator[Any], progress: progress_lib.JobMeter) -> Iterator[Any]:
  """`iterator`, adding the time spent waiting for each item to progress.input_wait_s."""
  iterator = iter(iterator)
  while True:
    begin = time.monotonic()
    item = next(iterator, _END)
    progress.input_wait_s += time.monotonic() - begin
    if item is _END:
      return
    yield item


_END = object()


class _UnitRunner:
  """Captions one unit's stream of (entry, frames | exception) and commits it."""

  def __init__(self, config: ml_collections.ConfigDict, captioner: Captioner, output_dir: str,
               process_index: int, progress: progress_lib.JobMeter):
    self.config, self.captioner, self.output_dir = config, captioner, output_dir
    self.process_index, self.progress = process_index, progress
    self.prompts = prompt_items(config)
    self.decode = _jsonable(captioner.decode_settings)

  def __call__(self, unit: units_lib.Unit, stream) -> None:
    started = time.monotonic()
    rows, failures, batch, batch_index = [], [], [], 0
    for entry, result in stream:
      if isinstance(result, BaseException):
        failures.append(self._failure(entry, result))
        continue
      batch.append((entry, result))
      if len(batch) == self.config.batch_size:
        rows += self._caption(unit.index, batch_index, batch)
        batch, batch_index = [], batch_index + 1
    if batch:
      rows += self._caption(unit.index, batch_index, batch)
    info = {"fingerprint": unit.fingerprint, "entries": unit.end - unit.start,
            "videos": unit.end - unit.start - len(failures), "failed": len(failures),
            "process": self.process_index, "seconds": round(time.monotonic() - started, 3)}
    commit.commit_unit(self.output_dir, unit.index, rows, failures, self.config.output_format,
                       info)
    self.progress.add_unit()

  def _failure(self, entry: Entry, error: BaseException) -> dict[str, Any]:
    kind = frames_lib.failure_kind(error)
    self.progress.add_failure(kind)
    if kind == "other":  # Not a known kind of bad input: keep going, but show the traceback once.
      logging.log_first_n(logging.WARNING, "caption: unexpected %s for %s", 3,
                          type(error).__name__, entry.where, exc_info=error)
    r = entry.record
    return {"video_id": entry.key, "path": r.path or "", "start": r.start, "end": r.end,
            "where": entry.where, "kind": kind, "error": type(error).__name__,
            "reason": str(error)}

  def _caption(self, unit: int, batch_index: int,
               batch: list[tuple[Entry, frames_lib.Loaded]]) -> list[dict[str, Any]]:
    size = len(batch)
    stacked = np.stack([loaded.frames for _, loaded in batch])
    if self.config.pad_batches and size < self.config.batch_size:
      # A fixed batch shape keeps the model compiled once; padding videos' captions are dropped.
      pad = np.repeat(stacked[-1:], self.config.batch_size - size, axis=0)
      stacked = np.concatenate([stacked, pad])
    outputs = []
    for p, (_, text) in enumerate(self.prompts):
      seed = batch_seed(self.config.seed, unit, batch_index, p)
      result = self.captioner.caption(stacked, [text] * len(stacked), seed)
      outputs.append(self._checked(result, len(stacked))[:size])
    rows, tokens = [], 0
    for v, (entry, loaded) in enumerate(batch):
      r = entry.record
      file_start, file_end = loaded.window if loaded.window is not None else (None, None)
      for p, (name, text) in enumerate(self.prompts):
        for s, (caption, log_likelihood) in enumerate(outputs[p][v]):
          tokens += count_tokens(self.captioner, caption)
          rows.append({"video_id": entry.key, "path": r.path or "", "start": r.start,
                       "end": r.end, "file": loaded.file, "file_start": file_start,
                       "file_end": file_end, "prompt_name": name, "prompt": text, "sample": s,
                       "caption": str(caption), "log_likelihood": float(log_likelihood),
                       "checkpoint": self.captioner.name, "decode": self.decode})
    self.progress.add_batch(size, tokens)
    return rows

  def _checked(self, result, batch_size: int):
    samples = self.config.num_samples
    if len(result) != batch_size or any(len(r) != samples for r in result):
      raise CaptionerError(
          f"captioner {self.captioner.name!r} returned {len(result)} videos x "
          f"{[len(r) for r in result][:4]}... captions; expected {batch_size} x {samples} "
          "(config.num_samples)")
    return result
