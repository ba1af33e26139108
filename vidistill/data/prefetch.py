"""`prefetch_map`: an ordered map over threads, for decoding videos ahead of the model."""
from __future__ import annotations

import collections
import concurrent.futures
from typing import Callable, Iterable, Iterator, TypeVar, Union


Item = TypeVar("Item")
Result = TypeVar("Result")


def prefetch_map(fn: Callable[[Item], Result], items: Iterable[Item], num_workers: int = 4,
                 buffer: int = 8) -> Iterator[tuple[Item, Union[Result, Exception]]]:
  """Yields `(item, fn(item))` in input order, computing up to `buffer` items ahead on threads.

  An exception raised by `fn` is yielded in place of its result, so one bad video does not end the
  stream. `items` is consumed lazily (it may be endless); closing the iterator cancels what has not
  started. Decoding releases the GIL inside FFmpeg, so threads overlap it with accelerator work.
  """
  if num_workers < 1 or buffer < 1:
    raise ValueError(f"num_workers and buffer must be >= 1, got {num_workers}, {buffer}")
  iterator = iter(items)
  pending: collections.deque = collections.deque()
  pool = concurrent.futures.ThreadPoolExecutor(num_workers, thread_name_prefix="prefetch_map")
  try:
    exhausted = False
    while True:
      while not exhausted and len(pending) < buffer:
        item = next(iterator, _END)
        if item is _END:
          exhausted = True
        else:
          pending.append((item, pool.submit(fn, item)))
      if not pending:
        return
      item, future = pending.popleft()
      try:
        result = future.result()
      except Exception as e:  # pylint: disable=broad-except  (delivered to the caller per item)
        result = e
      yield item, result
  finally:
    pool.shutdown(wait=True, cancel_futures=True)


_END = object()
