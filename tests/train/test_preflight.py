"""Checks before `vidistill train` writes: config changes against the workdir's run, --restart."""
import json
import os

import ml_collections
import pytest

from vidistill.config_args import ConfigError
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import preflight
from vidistill.train import restore


def _config(**changes):
  c = ml_collections.ConfigDict({
      "total_steps": 4, "batch_size": 4, "dataset_size": None, "log_every": 1,
      "optim": {"lr": 1e-3, "name": "adamw"}, "schedule": {"kind": "cosine", "warmup_steps": 1},
      "model": {"kind": "vlm", "vit": {"variant": "mu/8"}}, "frozen": ("t5/.*",)})
  c.update_from_flattened_dict(changes)
  return c


def _trained_workdir(tmp_path, config, complete=True):
  workdir = tmp_path / "run"
  trained = ml_collections.ConfigDict(config.to_dict())
  trained.dataset_size = 8  # Filled in by the run.
  restore.write_config(trained, str(workdir))
  step = workdir / ckpt_lib.SUBDIR / "4"
  os.makedirs(step / "params")
  if complete:
    (step / ckpt_lib.COMMIT_FILE).write_text("done")
  (workdir / "events.out.tfevents.1.host.1.v2").write_bytes(b"metrics")
  return workdir


def _files(path):
  return sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs)


def test_config_changes_lists_differing_fields_and_ignores_what_the_run_fills_in():
  old = json.loads(_config(dataset_size=8).to_json())
  assert preflight.config_changes(old, _config()) == []
  assert preflight.config_changes(old, _config(**{"optim.lr": 0.01, "model.vit.variant": "nu/16"})
                                  ) == [("model.vit.variant", "mu/8", "nu/16"),
                                        ("optim.lr", 0.001, 0.01)]


def test_options_added_or_removed_since_the_run_are_not_changes():
  old = json.loads(_config(dataset_size=8).to_json())
  old["removed_option"] = 3
  new = _config(**{"init": ml_collections.ConfigDict({"import_lm": "", "strict": False})})
  assert preflight.config_changes(old, new) == []
  new.init.import_lm = "hf:/models/t5"
  assert preflight.config_changes(old, new) == [("init.import_lm", "<absent>", "hf:/models/t5")]


def test_a_rerun_with_another_model_is_refused_naming_the_fields(tmp_path):
  workdir = _trained_workdir(tmp_path, _config())
  before = {f: (workdir / f).read_bytes() for f in _files(workdir)}
  with pytest.raises(preflight.WorkdirConflictError) as info:
    preflight.check_workdir(_config(**{"model.vit.variant": "nu/16", "batch_size": 32}),
                            str(workdir))
  message = str(info.value)
  assert "batch_size: 4 there, 32 now" in message and "model.vit.variant: 'mu/8'" in message
  assert "--restart" in message
  assert {f: (workdir / f).read_bytes() for f in _files(workdir)} == before


def test_a_longer_schedule_and_other_cadences_may_change(tmp_path):
  workdir = _trained_workdir(tmp_path, _config())
  preflight.check_workdir(_config(total_steps=40, log_every=10, **{"schedule.warmup_steps": 4}),
                          str(workdir))


def test_a_workdir_without_a_complete_checkpoint_has_nothing_to_protect(tmp_path):
  workdir = _trained_workdir(tmp_path, _config(), complete=False)
  preflight.check_workdir(_config(**{"model.vit.variant": "nu/16"}), str(workdir))
  preflight.check_workdir(_config(), str(tmp_path / "new"))


def test_restart_deletes_the_previous_run_only(tmp_path):
  workdir = _trained_workdir(tmp_path, _config())
  (workdir / "notes.txt").write_text("the user's own file")
  preflight.check_workdir(_config(**{"model.vit.variant": "nu/16"}), str(workdir), restart=True)
  assert os.listdir(workdir) == ["notes.txt"]


@pytest.mark.parametrize("field, value", [("total_steps", -5), ("total_steps", 0),
                                          ("total_epochs", -1.0)])
def test_training_length_must_be_positive(field, value):
  config = _config(total_steps=None, total_epochs=None)
  config[field] = value
  with pytest.raises(ConfigError, match=f"config.{field}={value}"):
    preflight.check_steps(config)
