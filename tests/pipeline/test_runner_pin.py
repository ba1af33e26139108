"""Pinned pipeline workers: each on its own share of the CPUs, the world's step on all of them."""
import os

import pytest

from vidistill.pipeline import runner
from vidistill.pipeline import steps as steps_lib

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity API")


def test_worker_cores_split_this_process_cpus_evenly(monkeypatch):
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 5})
  assert runner.worker_cores(2) == [(0, 1), (2, 3)]
  assert runner.worker_cores(5) == [(0,), (1,), (2,), (3,), (5,)]
  assert runner.worker_cores(6) is None  # Fewer CPUs than workers: no pinning.


def test_pinned_workers_run_on_their_own_cpus_and_remember_all():
  every = sorted(os.sched_getaffinity(0))
  groups = runner.worker_cores(2)
  if groups is None:
    pytest.skip(f"this machine has {len(every)} CPU(s); pinning 2 workers needs 2")
  pool = runner._Pool(2, pin=True)
  try:
    seen = {frozenset(pool.executor.submit(os.sched_getaffinity, 0).result()) for _ in range(8)}
    remembered = pool.executor.submit(os.getenv, steps_lib.ALL_CPUS_ENV).result()
  finally:
    pool.executor.shutdown()
  assert seen <= {frozenset(g) for g in groups} and seen
  assert remembered == ",".join(map(str, every))


def test_every_cpu_lifts_and_restores_a_pinned_affinity(monkeypatch):
  every = os.sched_getaffinity(0)
  if len(every) < 2:
    pytest.skip("needs 2 CPUs")
  one = {min(every)}
  monkeypatch.setenv(steps_lib.ALL_CPUS_ENV, ",".join(map(str, sorted(every))))
  os.sched_setaffinity(0, one)
  try:
    with steps_lib._every_cpu():
      assert os.sched_getaffinity(0) == every
    assert os.sched_getaffinity(0) == one
  finally:
    os.sched_setaffinity(0, every)
  monkeypatch.delenv(steps_lib.ALL_CPUS_ENV)
  with steps_lib._every_cpu():  # Not pinned by the runner: left alone.
    assert os.sched_getaffinity(0) == every
