"""The training input: deterministic, resumable, per-host batches of fixed shapes.

`batches(source, ...)` yields this process's rows of every global batch as a dict of numpy
arrays, text fields padded (or trimmed) to fixed lengths, string fields dropped. Given the seed,
the stream is a pure function of the position, so a run resumed at `start_step` sees exactly the
batches an uninterrupted run would have seen from that step on.

Sources, and what "per host" and "resume" mean for each:

  a Python sequence of example dicts (len + getitem: a list, an ArrayRecord data source) or a
  {split: sequence} mapping
      Global example n of the stream is `perm_e[n % N]` of epoch e = n // N, with perm_e a
      permutation drawn from (seed, e). Global batch k holds stream positions [k B, (k+1) B);
      process p loads only its rows [p B/P, (p+1) B/P). The global batch is therefore the SAME
      for any number of processes, each host reads only its part, and resuming is O(1).
  a seqio Task or Mixture, or any tf.data.Dataset
      tf.data with a fixed shuffle seed and `deterministic=True`. Each process reads its own shard
      (seqio `ShardInfo` / `Dataset.shard`, so files are split across hosts when there are enough)
      and batches B/P examples; resuming skips `start_step` local batches (exact, but it re-reads
      what it skips). The global batch depends on the number of processes.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from vidistill.data import grain_source

Batch = dict[str, np.ndarray]


class InputError(ValueError):
  """A source, batch size or example that the input pipeline cannot use."""


def batches(source: Any, *, batch_size: int, split: str = "train",
            seq_lengths: Mapping[str, int] | None = None, seed: int = 0, start_step: int = 0,
            process_index: int = 0, process_count: int = 1, shuffle: bool = True,
            repeat: bool = True, pad_id: int = 0,
            shuffle_buffer_size: int = 10_000) -> Iterator[Batch]:
  """Yields this process's `batch_size // process_count` rows of each global batch.

  Args:
    source: see the module docstring.
    batch_size: the GLOBAL batch size; must divide by `process_count`.
    split: the split of a seqio task or of a {split: sequence} mapping.
    seq_lengths: {key: length} of the 1-D text fields ("inputs", "targets"), padded with `pad_id`
      or trimmed to that length (seqio's convention: tasks trim, so this only pads them).
    seed: the shuffle seed (the stream is a function of seed and position).
    start_step: global batches already consumed (resume position).
    shuffle, repeat: False/False iterates the split once in order (evaluation); the last
      incomplete global batch is dropped.

  Yields:
    {key: np.ndarray [batch_size // process_count, ...]}, e.g. "video" uint8 [b, T, H, W, 3],
    "inputs"/"targets" int32 [b, L].
  """
  if batch_size <= 0 or batch_size % process_count:
    raise InputError(f"batch_size={batch_size} must be a positive multiple of the "
                     f"process count {process_count}")
  if not 0 <= process_index < process_count:
    raise InputError(f"process_index={process_index} is outside [0, {process_count})")
  seq_lengths = dict(seq_lengths or {})
  local = batch_size // process_count
  if _is_tf_source(source):
    return _tf_batches(source, split=split, local=local, seq_lengths=seq_lengths, seed=seed,
                       start_step=start_step, process_index=process_index,
                       process_count=process_count, shuffle=shuffle, repeat=repeat,
                       pad_id=pad_id, shuffle_buffer_size=shuffle_buffer_size)
  if isinstance(source, Mapping):
    if split not in source:
      raise InputError(f"split {split!r} is not in the source; it has {sorted(source)}")
    source = source[split]
  if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
    raise InputError(
        f"source of type {type(source).__name__} is not supported: give a seqio Task/Mixture, a "
        "tf.data.Dataset, or a sequence of example dicts (len + getitem)")
  return _sequence_batches(source, batch_size=batch_size, local=local,
                           first_row=process_index * local, seq_lengths=seq_lengths, seed=seed,
                           start_step=start_step, shuffle=shuffle, repeat=repeat, pad_id=pad_id)


def _is_tf_source(source: Any) -> bool:
  if hasattr(source, "get_dataset") and hasattr(source, "output_features"):
    return True  # seqio Task or Mixture.
  return type(source).__module__.startswith("tensorflow")


# --------------------------------------------------------------------- random-access sequences


def _sequence_batches(examples: Sequence[Mapping[str, Any]], *, batch_size: int, local: int,
                      first_row: int, seq_lengths: Mapping[str, int], seed: int,
                      start_step: int, shuffle: bool, repeat: bool,
                      pad_id: int) -> Iterator[Batch]:
  n = len(examples)
  if n == 0:
    raise InputError("the source has no examples")
  index = grain_source.EpochOrder(n, seed, shuffle)  # The streaming input's order too.

  step = start_step
  while repeat or (step + 1) * batch_size <= n:
    start = step * batch_size + first_row
    rows = [examples[index(position)] for position in range(start, start + local)]
    yield stack(rows, seq_lengths, pad_id, where=f"global batch {step}")
    step += 1


def stack(rows: Sequence[Mapping[str, Any]], seq_lengths: Mapping[str, int], pad_id: int = 0,
          where: str = "batch") -> Batch:
  """Stacks example dicts into a batch: text keys padded/trimmed, string fields dropped."""
  out = {}
  for key in rows[0]:
    values = [np.asarray(r[key]) for r in rows]
    if values[0].dtype.kind in "OSU":
      continue  # Ids and raw text cannot go to devices.
    if key in seq_lengths:
      values = [_fit(v, seq_lengths[key], pad_id, key) for v in values]
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
      raise InputError(f"{where}: field {key!r} has different shapes {sorted(shapes)}; give its "
                       "length in seq_lengths or make the source yield fixed shapes")
    out[key] = np.stack(values)
  return out


def _fit(value: np.ndarray, length: int, pad_id: int, key: str) -> np.ndarray:
  if value.ndim != 1:
    raise InputError(f"field {key!r} has shape {value.shape}; seq_lengths applies to 1-D fields")
  if len(value) >= length:
    return value[:length]
  return np.concatenate([value, np.full([length - len(value)], pad_id, value.dtype)])


# -------------------------------------------------------------------------- tf.data and seqio


def _tf_batches(source: Any, *, split: str, local: int, seq_lengths: Mapping[str, int],
                seed: int, start_step: int, process_index: int, process_count: int,
                shuffle: bool, repeat: bool, pad_id: int,
                shuffle_buffer_size: int) -> Iterator[Batch]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only tf.data sources need it)

  if hasattr(source, "get_dataset") and not isinstance(source, tf.data.Dataset):
    import seqio  # pylint: disable=g-import-not-at-top
    shard = seqio.ShardInfo(process_index, process_count) if process_count > 1 else None
    ds = source.get_dataset(seq_lengths or None, split=split, shuffle=shuffle, seed=seed,
                            shard_info=shard, num_epochs=None if repeat else 1)
  else:
    ds = source
    if process_count > 1:
      ds = ds.shard(process_count, process_index)
    if repeat:
      ds = ds.repeat()
    if shuffle:
      ds = ds.shuffle(shuffle_buffer_size, seed=seed)

  def select_and_fit(ex):
    out = {}
    for key, value in ex.items():
      if value.dtype == tf.string:
        continue
      if key in seq_lengths:
        value = value[:seq_lengths[key]]
        value = tf.pad(value, [[0, seq_lengths[key] - tf.shape(value)[0]]],
                       constant_values=tf.cast(pad_id, value.dtype))
        value = tf.ensure_shape(value, [seq_lengths[key]])
      out[key] = value
    return out

  ds = ds.map(select_and_fit, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(local, drop_remainder=True).skip(start_step)
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options).prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator()


# ---------------------------------------------------------------------------------- prefetching


def prefetch(iterator: Iterable[Batch], size: int = 2) -> Iterator[Batch]:
  """Runs `iterator` in a background thread, `size` batches ahead (order unchanged).

  An exception in the producer is re-raised in the consumer; closing the generator (or dropping
  it) stops the thread.
  """
  if size <= 0:
    yield from iterator
    return
  buffer: queue.Queue = queue.Queue(maxsize=size)
  done = object()
  stop = threading.Event()

  def put(item) -> bool:
    while not stop.is_set():  # A consumer that stopped early must not leave this thread blocked.
      try:
        buffer.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def produce():
    try:
      for item in iterator:
        if not put(item):
          return
      put(done)
    except BaseException as e:  # pylint: disable=broad-except  (handed to the consumer)
      put(e)

  thread = threading.Thread(target=produce, daemon=True, name="vidistill-input")
  thread.start()
  try:
    while True:
      item = buffer.get()
      if item is done:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()  # The thread ends at its next put (within 0.1 s of its current item).
