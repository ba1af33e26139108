"""The input pipeline: deterministic, resumable at any step, per-host slices of the global batch."""
import itertools

import numpy as np
import pytest

from vidistill.train import input as input_lib


def _source(n=37):
  return [{"id": f"ex{i}", "x": np.full([2], i, np.float32),
           "targets": np.arange(1, i % 6 + 2, dtype=np.int32)} for i in range(n)]


def _take(it, k):
  return list(itertools.islice(it, k))


def _ids(batch):
  return batch["x"][:, 0].astype(int).tolist()


def test_sequence_source_is_a_permutation_per_epoch_and_deterministic():
  src = _source()
  a = _take(input_lib.batches(src, batch_size=8, seed=3, seq_lengths={"targets": 4}), 9)
  b = _take(input_lib.batches(src, batch_size=8, seed=3, seq_lengths={"targets": 4}), 9)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["x"], y["x"])
  stream = [i for batch in a for i in _ids(batch)]
  assert sorted(stream[:37]) == list(range(37))           # Epoch 0: each example once.
  assert sorted(stream[37:72]) == sorted(set(stream[37:72]))  # Epoch 1 too (partly).
  assert stream[:37] != list(range(37))                    # Shuffled.
  other = _take(input_lib.batches(src, batch_size=8, seed=4, seq_lengths={"targets": 4}), 1)
  assert _ids(other[0]) != _ids(a[0])


def test_resume_at_any_step_continues_the_stream_exactly():
  src = _source()
  full = _take(input_lib.batches(src, batch_size=8, seed=1, seq_lengths={"targets": 4}), 12)
  for start in (1, 4, 5, 11):
    resumed = _take(input_lib.batches(src, batch_size=8, seed=1, seq_lengths={"targets": 4},
                                      start_step=start), 12 - start)
    for x, y in zip(full[start:], resumed):
      for k in x:
        np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.parametrize("count", [2, 4])
def test_process_slices_concatenate_to_the_single_process_batch(count):
  src = _source()
  whole = _take(input_lib.batches(src, batch_size=8, seed=2, seq_lengths={"targets": 4}), 6)
  parts = [_take(input_lib.batches(src, batch_size=8, seed=2, seq_lengths={"targets": 4},
                                   process_index=p, process_count=count), 6)
           for p in range(count)]
  for step in range(6):
    for key in whole[step]:
      joined = np.concatenate([parts[p][step][key] for p in range(count)])
      np.testing.assert_array_equal(joined, whole[step][key])
    assert parts[0][step]["x"].shape[0] == 8 // count


def test_each_process_reads_only_its_rows():
  class Counting(list):
    reads = []
    def __getitem__(self, i):
      self.reads.append(i)
      return list.__getitem__(self, i)
  src = Counting(_source())
  _take(input_lib.batches(src, batch_size=8, shuffle=False, process_index=1, process_count=2,
                          seq_lengths={"targets": 4}), 2)
  assert sorted(src.reads) == [4, 5, 6, 7, 12, 13, 14, 15]


def test_padding_trimming_and_string_fields_dropped():
  batch = next(input_lib.batches(_source(), batch_size=6, shuffle=False,
                                 seq_lengths={"targets": 4}))
  assert set(batch) == {"x", "targets"}
  assert batch["targets"].shape == (6, 4) and batch["targets"].dtype == np.int32
  np.testing.assert_array_equal(batch["targets"][0], [1, 0, 0, 0])
  np.testing.assert_array_equal(batch["targets"][5], [1, 2, 3, 4])  # 6 tokens, trimmed to 4.


def test_no_repeat_is_one_ordered_pass_dropping_the_remainder():
  got = list(input_lib.batches(_source(), batch_size=8, shuffle=False, repeat=False,
                               seq_lengths={"targets": 4}))
  assert len(got) == 4 and _ids(got[-1]) == list(range(24, 32))


def test_errors_are_specific():
  with pytest.raises(input_lib.InputError, match="multiple of the process count 3"):
    input_lib.batches(_source(), batch_size=8, process_count=3)
  with pytest.raises(input_lib.InputError, match="different shapes"):
    next(input_lib.batches(_source(), batch_size=8, shuffle=False))  # No targets length given.
  with pytest.raises(input_lib.InputError, match="split 'test' is not in the source"):
    input_lib.batches({"train": _source()}, batch_size=8, split="test")


def test_prefetch_keeps_order_and_reraises():
  assert list(input_lib.prefetch(iter(range(10)), 3)) == list(range(10))

  def broken():
    yield 1
    raise OSError("disk gone")
  it = input_lib.prefetch(broken(), 2)
  assert next(it) == 1
  with pytest.raises(OSError, match="disk gone"):
    next(it)


def test_closing_prefetch_stops_its_thread():
  import threading
  import time
  endless = input_lib.prefetch(itertools.count(), 2)
  assert next(endless) == 0
  endless.close()
  deadline = time.monotonic() + 5
  while any(t.name == "vidistill-input" for t in threading.enumerate()):
    assert time.monotonic() < deadline, "the prefetch thread is still running"
    time.sleep(0.05)


# ------------------------------------------------------------------------ tf.data and seqio


def _tf_dataset():
  import tensorflow as tf
  src = _source(40)
  return tf.data.Dataset.from_generator(
      lambda: ({"id": e["id"], "x": e["x"], "targets": e["targets"]} for e in src),
      output_signature={"id": tf.TensorSpec([], tf.string), "x": tf.TensorSpec([2], tf.float32),
                        "targets": tf.TensorSpec([None], tf.int32)})


def test_tf_dataset_deterministic_resumable_and_sharded():
  ds = _tf_dataset()
  kw = dict(batch_size=8, seed=5, seq_lengths={"targets": 4}, shuffle_buffer_size=16)
  full = _take(input_lib.batches(ds, **kw), 7)
  resumed = _take(input_lib.batches(ds, start_step=3, **kw), 4)  # A new pipeline: same stream.
  for x, y in zip(full[3:], resumed):
    np.testing.assert_array_equal(x["x"], y["x"])
    np.testing.assert_array_equal(x["targets"], y["targets"])
  assert set(full[0]) == {"x", "targets"} and full[0]["targets"].shape == (8, 4)
  shards = [_take(input_lib.batches(ds, process_index=p, process_count=2, **kw), 5)
            for p in range(2)]
  seen = [set(int(v) for b in s for v in b["x"][:, 0]) for s in shards]
  assert seen[0].isdisjoint(seen[1])  # Each host reads its own examples...
  assert all(v % 2 == p for p in range(2) for v in seen[p])  # ... its shard of the source.


def test_seqio_task():
  import seqio
  from vidistill.data import tasks

  def examples(split):
    del split
    for i in range(12):
      yield {"id": f"v{i}", "frames": np.full((2, 4, 4, 3), i, np.uint8),
             "caption": "a red ball" + " bounces" * (i % 3)}

  source = tasks.examples_source(examples, ["train"], num_frames=2, resolution=4,
                                 text_keys=("caption",))
  task = tasks.caption_task("train_input_test", source, seqio.ByteVocabulary(), prompt="cap:")
  kw = dict(batch_size=4, seed=0, seq_lengths={"inputs": 8, "targets": 16})
  full = _take(input_lib.batches(task, **kw), 5)
  resumed = _take(input_lib.batches(task, start_step=2, **kw), 3)
  assert full[0]["video"].shape == (4, 2, 4, 4, 3) and full[0]["video"].dtype == np.uint8
  assert full[0]["targets"].shape == (4, 16) and full[0]["inputs"].shape == (4, 8)
  for x, y in zip(full[2:], resumed):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  second = _take(input_lib.batches(task, process_index=1, process_count=2, **kw), 3)
  assert second[0]["video"].shape[0] == 2
  # Process 1 of 2 reads the odd examples of the source only.
  assert all(int(v) % 2 == 1 for b in second for v in b["video"][:, 0, 0, 0, 0])
