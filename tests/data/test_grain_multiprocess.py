"""Two processes joined by jax.distributed on 127.0.0.1 stream disjoint rows that together make
each global batch (tests/data/grain_worker.py)."""
import io
import json
import os
import re
import sys

import numpy as np
import pytest

from vidistill.data import grain_source
from vidistill.data import shards
from vidistill.launch import local

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grain_worker.py")


@pytest.mark.slow  # Two JAX processes start and join: ~40 s on 2 cores.
def test_two_processes_read_disjoint_parts_that_cover_the_batch(tmp_path):
  n, batch, start, steps = 21, 6, 2, 5  # 30 positions from 12: crosses an epoch boundary.
  prefix = str(tmp_path / "rows")
  shards.write_shards(({"id": f"e{i}", "index": np.array([i], np.int32)} for i in range(n)),
                      prefix, 4, "arrayrecord")
  out = io.StringIO()
  result = local.launch([sys.executable, WORKER, prefix, str(start), str(steps), str(batch)], 2,
                        timeout_s=180, out=out)
  text = out.getvalue()
  assert result.returncodes == (0, 0), text[-3000:]
  results = {int(m.group(1)): json.loads(m.group(2))
             for m in re.finditer(r"\[p(\d)\] RESULT (.*)", text)}
  assert sorted(results) == [0, 1] and all(r["count"] == 2 for r in results.values()), text[-3000:]
  parts = np.asarray(results[0]["all"])  # [process, step, row], as gathered across processes
  assert parts.shape == (2, steps, batch // 2)
  np.testing.assert_array_equal(parts, results[1]["all"])

  whole = grain_source.batches(grain_source.open_records(prefix), batch_size=batch, seed=11,
                               start_step=start)
  for step in range(steps):
    want = next(whole)["index"][:, 0].tolist()
    first, second = parts[0, step].tolist(), parts[1, step].tolist()
    assert first + second == want, step  # Together: the global batch, in its order.
    first_position = (start + step) * batch
    if first_position // n == (first_position + batch - 1) // n:  # Within one epoch:
      assert not set(first) & set(second), step  # no example is read by both processes.
