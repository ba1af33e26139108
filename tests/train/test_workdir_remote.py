"""A training workdir on a remote file system (TensorFlow's ram:// standing in for gs://).

What runs here: config.json written and found, complete steps located and incomplete ones
removed. Orbax itself cannot use ram:// (etils epath has no ram:// backend: `epath.Path("ram://x")`
raises KeyError, and tensorstore has no such kvstore), so saving and restoring checkpoint payloads
on a remote path is not tested here.
"""
import os
import uuid

import ml_collections
import pytest

from vidistill import fs
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import restore


def _step(directory, step, complete, suffix=""):
  path = os.path.join(directory, f"{step}{suffix}")
  fs.makedirs(os.path.join(path, "params"))
  with fs.open(os.path.join(path, "params", "_METADATA"), "w") as f:
    f.write("{}")
  if complete:
    with fs.open(os.path.join(path, ckpt_lib.COMMIT_FILE), "w") as f:
      f.write("done")
  return path


def test_config_and_steps_in_a_ram_workdir():
  workdir = f"ram://train-{uuid.uuid4().hex}/stage1"
  config = ml_collections.ConfigDict({"model": {"kind": "vlm"}, "data": {"source": "world"}})
  path = restore.write_config(config, workdir)
  assert path == f"{workdir}/config.json" and not os.path.exists(workdir)
  assert fs.listdir(workdir) == ["config.json"]  # The .tmp was moved, not left.
  checkpoints = os.path.join(workdir, ckpt_lib.SUBDIR)
  _step(checkpoints, 100, complete=True)
  step_300 = _step(checkpoints, 300, complete=True)
  _step(checkpoints, 400, complete=False)  # Killed mid-copy: never restored.
  # read_config from the workdir, its checkpoints/ or one step directory (and a trailing "/").
  for where in (workdir, workdir + "/", checkpoints, step_300):
    assert restore.read_config(where).to_dict() == config.to_dict()
  with pytest.raises(FileNotFoundError, match="is not a workdir"):
    restore.read_config(f"ram://train-{uuid.uuid4().hex}/none")

  assert ckpt_lib._locate(workdir) == (checkpoints, 300)
  assert ckpt_lib._locate(step_300) == (checkpoints, 300)
  with pytest.raises(ckpt_lib.CheckpointError, match="not a finalised checkpoint"):
    ckpt_lib._locate(os.path.join(checkpoints, "400"))

  _step(checkpoints, 200, complete=False, suffix=".incomplete")  # Set aside by older versions.
  ckpt_lib._remove_incomplete(checkpoints)
  assert sorted(fs.listdir(checkpoints)) == ["100", "300"]
  assert not fs.glob(os.path.join(checkpoints, "400", "*"))
  assert fs.isfile(os.path.join(checkpoints, "300", ckpt_lib.COMMIT_FILE))
  with pytest.raises(ckpt_lib.CheckpointError, match="no complete checkpoint"):
    ckpt_lib._locate(f"ram://train-{uuid.uuid4().hex}/empty")
