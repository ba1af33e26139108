"""Streaming training input: ArrayRecord shards read through Grain, never held in memory whole.

    rows = grain_source.open_records("/data/stage1-*.array_record")   # random access, lazy
    order = grain_source.EpochOrder(len(rows), seed=0)
    for batch in grain_source.batches(rows, batch_size=256, seed=0, start_step=1000,
                                      process_index=0, process_count=4):
      ...   # {key: np.ndarray [64, ...]}: this process's rows of global batch 1000, 1001, ...

The schedule is a pure function of (seed, position): global example n of the stream is
`perm_e[n % N]` of epoch e = n // N (perm_e drawn from (seed, e)), global batch k holds stream
positions [k B, (k+1) B), and process p reads only its rows [p B/P, (p+1) B/P) of it. So the
processes read disjoint records that together make the global batch, epochs reshuffle when
steps x B > N, and a run resumed at step k (the checkpoint's `data_position`) reads exactly the
batches an uninterrupted run would: the step IS the loader's state. The in-memory path
(vidistill/train/input.py) uses the same `EpochOrder`, so both give the same batches for a seed.

Grain (not tf.data or seqio) because its random-access `MapDataset` over ArrayRecord makes that
global index order cheap: record i is read by its key, no shuffle buffer, no skipping to resume.
Reading and parsing (tf.train.Example -> numpy, PNG frames decoded) run in Grain's read threads,
at most `prefetch_batches` local batches ahead, so host memory is bounded by the batch size, not
by the corpus.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from vidistill.data import shards

Batch = dict[str, np.ndarray]


class StreamError(ValueError):
  """Shards the streaming input cannot read; the message names the path and the fix."""


class EpochOrder:
  """Stream position -> example index: a fresh permutation of the N examples every epoch.

  Holds the permutations (8 bytes an example) of the last two epochs it was asked about, since
  readers work near one epoch boundary at a time; safe to share between read threads.
  """

  def __init__(self, size: int, seed: int, shuffle: bool = True):
    if size <= 0:
      raise StreamError("the source has no examples")
    self.size, self.seed, self.shuffle = size, seed, shuffle
    self._perms: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __call__(self, position: int) -> int:
    epoch, offset = divmod(position, self.size)
    if not self.shuffle:
      return offset
    perm = self._perms.get(epoch)
    if perm is None:
      with self._lock:
        perm = self._perms.get(epoch)
        if perm is None:
          perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
          self._perms = {e: p for e, p in self._perms.items() if e == epoch - 1}
          self._perms[epoch] = perm
    return int(perm[offset])


def shard_files(pattern: str | Sequence[str]) -> list[str]:
  """ArrayRecord files from a glob, a prefix given to write_shards, or a list of them."""
  try:
    paths = shards.expand_paths(pattern)
  except shards.ShardError as e:
    raise StreamError(f"data.shards: {e}; write them with `vidistill train --config <stage> "
                      "--write_shards PREFIX`") from None
  bad = [p for p in paths if not p.endswith(shards.FORMATS["arrayrecord"])]
  if bad:
    raise StreamError(f"data.shards: {bad[0]} is not an ArrayRecord file; streaming reads by "
                      "record index, which TFRecord cannot do: write ArrayRecord shards with "
                      "`vidistill train --config <stage> --write_shards PREFIX`")
  return paths


def count_records(pattern: str | Sequence[str]) -> int:
  """Examples in the shards, from the ArrayRecord indices (nothing decoded)."""
  return shards.count_examples(shard_files(pattern))


def open_records(pattern: str | Sequence[str]):
  """The shards as a random-access source of parsed examples (a grain.MapDataset, lazy).

  Example n is the n-th example given to `shards.write_shards`, which deals them round-robin:
  shard n % S, record n // S. Files of other layouts are read in file order.
  """
  import grain  # pylint: disable=g-import-not-at-top  (only the streaming path needs it)
  paths = shard_files(pattern)
  counts = [shards.count_examples(path) for path in paths]
  source = grain.sources.ArrayRecordDataSource(paths)
  return grain.MapDataset.source(_RoundRobin(source, counts)).map(_parse)


class _RoundRobin:
  """Record keys of `write_shards`' layout: example n -> file n % S, position n // S."""

  def __init__(self, source: Any, counts: Sequence[int]):
    self._source = source
    size, files = int(sum(counts)), len(counts)
    self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    expected = [(size - i + files - 1) // files for i in range(files)]
    self._files = files if list(counts) == expected else 0
    self._size = size

  def __len__(self) -> int:
    return self._size

  def __getitem__(self, n: int) -> bytes:
    if not self._files:
      return self._source[n]
    return self._source[int(self._starts[n % self._files]) + n // self._files]


def _parse(record: bytes) -> dict[str, Any]:
  example = shards.parse_example(record, where="data.shards record")
  # Ids and raw text cannot go to devices (the in-memory path drops them too).
  return {k: v for k, v in example.items() if isinstance(v, np.ndarray)}


def batches(rows: Any, *, batch_size: int, seed: int, start_step: int = 0,
            process_index: int = 0, process_count: int = 1, shuffle: bool = True,
            read_threads: int = 4, prefetch_batches: int = 2) -> Iterator[Batch]:
  """Yields this process's `batch_size // process_count` rows of global batches start_step, ...

  Args:
    rows: a random-access source of example dicts of fixed-shape numpy arrays (`open_records`).
    batch_size: the GLOBAL batch size; divides by `process_count`.
    read_threads: Grain threads reading and parsing records (0: in the consumer's thread).
    prefetch_batches: local batches read ahead of the consumer (bounds host memory).

  Yields:
    {key: np.ndarray [batch_size // process_count, ...]}, e.g. "video" uint8 [b, T, H, W, 3].
  """
  import grain  # pylint: disable=g-import-not-at-top
  if batch_size <= 0 or batch_size % process_count:
    raise StreamError(f"batch_size={batch_size} must be a positive multiple of the process "
                      f"count {process_count}")
  local = batch_size // process_count
  order = EpochOrder(len(rows), seed, shuffle)

  def read(row: int) -> dict[str, Any]:  # This process's row `row` -> its example.
    step, j = divmod(row, local)
    return rows[order(step * batch_size + process_index * local + j)]

  # Rows of this process, as many as a schedule can ask for (Grain's lazy datasets index to
  # sys.maxsize; nothing is built per row until it is read).
  stream = grain.MapDataset.range(start_step * local, sys.maxsize // 2).map(read)
  if read_threads > 0:
    options = grain.ReadOptions(num_threads=read_threads,
                                prefetch_buffer_size=max(1, prefetch_batches) * local)
  else:
    options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
  return iter(stream.to_iter_dataset(options).batch(local, drop_remainder=True))
