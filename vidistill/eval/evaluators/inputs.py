"""Evaluation inputs: annotation records -> decoded frames -> padded, optionally sharded batches.

Records come from a real annotation file through `vidistill.data.annotations.READERS`; each
record's video is found by `resolve_video` and decoded by `video_io.read_video` on prefetch
threads. Records that share a video (several questions about one clip) share one decode: videos
are decoded once each, in first-appearance order, and every record of a video is emitted with it.

Batches have the evaluator's batch size; the last one is padded by repeating its last row, so a
jitted model compiles once (padded rows are dropped from the outputs). With a mesh, video batches
are placed on it sharded over the batch axes (`common.shard_batch`).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Sequence

from absl import logging
import numpy as np

from vidistill import progress as progress_lib
from vidistill.config_args import ConfigError
from vidistill.data import annotations
from vidistill.data import prefetch
from vidistill.data import video_io
from vidistill.data.records import AnnotationError, VideoRecord
from vidistill.eval.evaluators import common

EvalDataError = common.EvalDataError


def check_data(options: common.DataOptions, where: str, files: bool = True) -> None:
  """The reader exists and (`files`) the annotation file and video folder are there."""
  if options.reader not in annotations.READERS:
    raise ConfigError(f"{where}.reader={options.reader!r} is not an annotation format; expected "
                      f"one of {sorted(annotations.READERS)}")
  if not files:
    return
  if not os.path.isfile(options.annotations):
    raise EvalDataError(f"{where}.annotations: no such file {options.annotations!r}; point it at "
                        f"the data set's {options.reader!r} annotation file (docs/datasets.md)")
  if not os.path.isdir(options.video_root):
    raise EvalDataError(f"{where}.video_root: no such folder {options.video_root!r}; point it at "
                        "the folder holding the videos (docs/datasets.md shows the layouts)")


def load_records(options: common.DataOptions, where: str) -> list[VideoRecord]:
  """The annotation file's records (the first `max_examples` when > 0)."""
  check_data(options, where)
  reader = annotations.READERS[options.reader]
  try:
    records = reader(options.annotations, **dict(options.reader_options))
  except TypeError as e:
    raise ConfigError(f"{where}.reader_options={dict(options.reader_options)!r} do not fit "
                      f"reader {options.reader!r}: {e}") from None
  except AnnotationError as e:
    raise EvalDataError(f"{where}: {e}") from None
  if options.max_examples:
    records = records[:options.max_examples]
  if not records:
    raise EvalDataError(f"{where}: {options.annotations!r} holds no records (reader "
                        f"{options.reader!r}, options {dict(options.reader_options)})")
  return records


def iter_frames(records: Sequence[VideoRecord], video_root: str,
                settings: common.Settings) -> Iterator[tuple[int, np.ndarray | Exception]]:
  """(record index, frames uint8 [T, R, R, 3] or the exception that stopped them), every record
  once; records of one video come together, right after its decode."""
  groups: dict[tuple[str, Any], list[int]] = {}
  for index, record in enumerate(records):
    try:
      found = annotations.resolve_video(record, video_root, settings.video_extensions)
    except annotations.VideoPathError as e:
      yield index, e
      continue
    groups.setdefault((found.path, found.window), []).append(index)

  def decode(key: tuple[str, Any]) -> np.ndarray:
    path, window = key
    return video_io.read_video(path, settings.num_frames, resolution=settings.resolution,
                               window=window)

  for key, frames in prefetch.prefetch_map(decode, list(groups), settings.num_workers,
                                           settings.buffer):
    for index in groups[key]:
      yield index, frames


def map_video_batches(records: Sequence[VideoRecord], call: Callable[[Any, list[int]], Any], *,
                      options: common.DataOptions, settings: common.Settings, batch_size: int,
                      label: str) -> tuple[dict[int, Any], list[int]]:
  """Runs `call(frames [B, T, R, R, 3], indices [B])` over every record's video, in batches.

  `indices` are the records in the batch (padding repeats the last one); `call` returns B
  outputs (an array or a list), of which the padded ones are dropped.

  Returns ({record index: output}, indices of records whose video failed and were skipped).
  Raises EvalDataError for a failed video unless `options.on_error == "skip"`, and when no video
  could be used at all.
  """
  progress = BatchLog(f"{label} videos", len(records), batch_size, settings.progress_every_s)
  outputs: dict[int, Any] = {}
  failed: list[int] = []
  batch: list[tuple[int, np.ndarray]] = []

  def flush() -> None:
    indices = [i for i, _ in batch]
    frames = np.stack([f for _, f in batch])
    if settings.pad_batches and len(batch) < batch_size:
      pad = batch_size - len(batch)
      frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
      indices += [indices[-1]] * pad
    results = call(common.shard_batch(frames, settings.mesh), indices)
    if len(results) != len(indices):
      raise EvalDataError(f"{label}: the model returned {len(results)} outputs for a batch of "
                          f"{len(indices)} videos")
    for position in range(len(batch)):
      outputs[indices[position]] = results[position]
    progress.update(len(batch))
    batch.clear()

  for index, frames in iter_frames(records, options.video_root, settings):
    if isinstance(frames, Exception):
      record = records[index]
      if options.on_error == "raise":
        raise EvalDataError(
            f"{label}: video of record {annotations.record_id(record)!r} cannot be used: {frames}."
            " Fix or remove it, or set on_error='skip' to leave such records out (they are "
            "counted in num_failed)") from frames
      logging.warning("%s: skipping record %s: %s", label, annotations.record_id(record), frames)
      failed.append(index)
      progress.skip()
      continue
    batch.append((index, frames))
    if len(batch) == batch_size:
      flush()
  if batch:
    flush()
  progress.finish()
  if not outputs:
    raise EvalDataError(f"{label}: no video could be decoded ({len(records)} records skipped)")
  return outputs, sorted(failed)


def embed_texts(model: common.VideoTextEmbedder, texts: Sequence[str], *,
                settings: common.Settings, batch_size: int, label: str) -> np.ndarray:
  """[N, D] float32 unit-norm text embeddings, `batch_size` texts per call (last batch padded)."""
  progress = BatchLog(f"{label} texts", len(texts), batch_size, settings.progress_every_s)
  out = []
  for start in range(0, len(texts), batch_size):
    chunk = list(texts[start:start + batch_size])
    count = len(chunk)
    if settings.pad_batches and count < batch_size:
      chunk += [chunk[-1]] * (batch_size - count)
    embeddings = common.normalized_embeddings(model.embed_texts(chunk), f"{label} texts",
                                              len(chunk))
    out.append(embeddings[:count])
    progress.update(count)
  progress.finish()
  return np.concatenate(out)


def embed_videos(model: common.VideoTextEmbedder, records: Sequence[VideoRecord], *,
                 options: common.DataOptions, settings: common.Settings, batch_size: int,
                 label: str) -> tuple[np.ndarray, list[int]]:
  """([N_ok, D] float32 unit-norm video embeddings, the record indices they belong to), skipping
  failed videos when `options.on_error == "skip"`."""
  def call(frames, indices):
    return common.normalized_embeddings(model.embed_videos(frames), f"{label} videos",
                                        len(indices))

  outputs, _ = map_video_batches(records, call, options=options, settings=settings,
                                 batch_size=batch_size, label=label)
  kept = sorted(outputs)
  return np.stack([outputs[i] for i in kept]), kept


# ------------------------------------------------------------------------------------------------
# Progress: absl log lines with batches done, rate and ETA.

class BatchLog:
  """Logs `<label>: batch b/B (n/N), rate/s, ETA` every `every_s` seconds, and once at `finish()`.

  `clock` is injectable for tests; the lines logged are kept in `lines`.
  """

  def __init__(self, label: str, total_items: int, batch_size: int, every_s: float,
               clock: Callable[[], float] = time.monotonic):
    self.label, self.every_s = label, every_s
    self.progress = progress_lib.Progress(total_items, clock=clock)
    self.total_batches = max(1, -(-total_items // batch_size))
    self.batches = 0
    self.lines: list[str] = []

  def update(self, items: int) -> None:
    """One batch of `items` done."""
    self.batches += 1
    self.progress.add(items)
    if self.progress.due(self.every_s):
      self._log()

  def skip(self) -> None:
    """One item left out (its video failed): counts towards the total, in no batch."""
    self.progress.add(1)

  def finish(self) -> None:
    self._log()

  def _log(self) -> None:
    p = self.progress
    self.lines.append(f"{self.label}: batch {self.batches}/{self.total_batches} "
                      f"({p.done}/{p.total}), {p.rate:.1f}/s, "
                      f"ETA {progress_lib.format_duration(p.eta_seconds)}")
    logging.info("%s", self.lines[-1])
