"""The streaming reader: round-robin shard order, the global schedule, per-process rows, resume."""
import numpy as np
import pytest

from vidistill.data import grain_source
from vidistill.data import shards


def _write(tmp_path, n, num_shards, name="rows"):
  examples = ({"id": f"e{i}", "index": np.array([i], np.int32),
               "video": np.full([2, 4, 4, 3], i % 256, np.uint8)} for i in range(n))
  prefix = str(tmp_path / name)
  shards.write_shards(examples, prefix, num_shards, "arrayrecord")
  return prefix


def _indices(batch):
  return batch["index"][:, 0].tolist()


@pytest.mark.parametrize("n,num_shards", [(10, 3), (7, 1), (9, 4)])
def test_example_n_is_the_nth_written_and_strings_are_dropped(tmp_path, n, num_shards):
  rows = grain_source.open_records(_write(tmp_path, n, num_shards))
  assert len(rows) == grain_source.count_records(str(tmp_path / "rows")) == n
  assert [int(rows[i]["index"][0]) for i in range(n)] == list(range(n))
  assert sorted(rows[0]) == ["index", "video"]  # "id" (a str) cannot go to devices.
  np.testing.assert_array_equal(rows[5]["video"], np.full([2, 4, 4, 3], 5, np.uint8))


def test_the_schedule_is_a_fresh_permutation_each_epoch_as_numpy_draws_it(tmp_path):
  n, batch = 10, 4
  rows = grain_source.open_records(_write(tmp_path, n, 3))
  got = []
  stream = grain_source.batches(rows, batch_size=batch, seed=7, read_threads=2)
  for _ in range(5):  # 20 positions: two whole epochs, batches crossing the boundary.
    got += _indices(next(stream))
  # The reference, written out independently of EpochOrder.
  want = [int(np.random.default_rng([7, p // n]).permutation(n)[p % n]) for p in range(20)]
  assert got == want
  assert sorted(got[:10]) == sorted(got[10:]) == list(range(n))


@pytest.mark.parametrize("threads", [0, 3])
def test_processes_read_disjoint_rows_that_make_the_global_batch(tmp_path, threads):
  rows = grain_source.open_records(_write(tmp_path, 13, 2))
  whole = grain_source.batches(rows, batch_size=6, seed=1, read_threads=threads)
  parts = [grain_source.batches(rows, batch_size=6, seed=1, process_index=p, process_count=3,
                                read_threads=threads) for p in range(3)]
  for _ in range(6):
    mine = [_indices(next(part)) for part in parts]
    assert all(len(m) == 2 for m in mine)
    assert sum(mine, []) == _indices(next(whole))


def test_resume_at_a_step_reads_what_an_uninterrupted_run_reads_from_it(tmp_path):
  rows = grain_source.open_records(_write(tmp_path, 11, 3))
  full = grain_source.batches(rows, batch_size=4, seed=3)
  batches = [_indices(next(full)) for _ in range(9)]
  resumed = grain_source.batches(rows, batch_size=4, seed=3, start_step=5)
  assert [_indices(next(resumed)) for _ in range(4)] == batches[5:]


def test_files_of_another_layout_are_read_in_file_order(tmp_path):
  a = _write(tmp_path, 3, 1, "a")
  b = _write(tmp_path, 1, 1, "b")  # 3 + 1 records: not how write_shards deals 4 into 2 files.
  rows = grain_source.open_records([a + "-00000-of-00001.array_record",
                                    b + "-00000-of-00001.array_record"])
  assert [int(rows[i]["index"][0]) for i in range(4)] == [0, 1, 2, 0]


def test_tfrecord_shards_are_refused_naming_the_file_and_the_fix(tmp_path):
  prefix = str(tmp_path / "tf")
  shards.write_shards([{"id": "a", "index": np.array([0], np.int32)}], prefix, 1, "tfrecord")
  with pytest.raises(grain_source.StreamError, match=r"tf-00000-of-00001.tfrecord is not an "
                     r"ArrayRecord file.*--write_shards"):
    grain_source.open_records(prefix)
  with pytest.raises(grain_source.StreamError, match="no shard files match"):
    grain_source.count_records(str(tmp_path / "missing"))
