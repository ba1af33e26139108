"""Tests for vidistill/parallel/multihost.py: setting resolution (no processes are started)."""
import pytest

from vidistill.parallel import multihost


def test_nothing_set_is_single_process():
  assert multihost.resolve_setup(env={}).mode == "single"
  assert multihost.initialize(multihost.DistributedSetup("single")).mode == "single"


def test_env_gives_explicit_setup_and_flags_win():
  env = {"VIDISTILL_COORDINATOR_ADDRESS": "h0:1234", "VIDISTILL_NUM_PROCESSES": "4",
         "VIDISTILL_PROCESS_ID": "2", "VIDISTILL_LOCAL_DEVICE_IDS": "0,1"}
  s = multihost.resolve_setup(env=env)
  assert (s.mode, s.coordinator_address, s.num_processes, s.process_id, s.local_device_ids) == (
      "explicit", "h0:1234", 4, 2, (0, 1))
  s = multihost.resolve_setup(process_id=3, coordinator_address="h9:1", env=env)
  assert (s.coordinator_address, s.process_id) == ("h9:1", 3)


def test_incomplete_settings_name_the_missing_ones():
  with pytest.raises(multihost.MultihostError, match=r"missing \['process_id'\]"):
    multihost.resolve_setup(coordinator_address="h:1", num_processes=2, env={})
  with pytest.raises(multihost.MultihostError, match="outside"):
    multihost.resolve_setup("h:1", 2, 2, env={})
  with pytest.raises(multihost.MultihostError, match="VIDISTILL_NUM_PROCESSES='x'"):
    multihost.resolve_setup(env={"VIDISTILL_NUM_PROCESSES": "x"})


def test_one_process_needs_no_coordinator():
  assert multihost.resolve_setup(num_processes=1, env={}).mode == "single"


@pytest.mark.parametrize("env, mode", [
    ({"SLURM_NTASKS": "8"}, "auto"),
    ({"SLURM_NTASKS": "1"}, "single"),
    ({"TPU_WORKER_HOSTNAMES": "a,b"}, "auto"),
    ({"TPU_WORKER_HOSTNAMES": "a"}, "single"),
])
def test_cluster_markers(env, mode):
  assert multihost.resolve_setup(env=env).mode == mode
