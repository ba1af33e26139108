"""vidistill/models/trained.py: the shapes a stage records and how caption / eval settings meet
them (the loading itself is exercised on real workdirs in tests/test_method_end_to_end.py)."""
import json
import os

import ml_collections
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import trained
from vidistill.train import restore
from vidistill.train import stage_configs


def _shapes(**kw):
  fields = dict(num_frames=8, resolution=32, tokens_per_frame=4, vocab="/w/vocab.model",
                vocab_size=467, max_frames=16)
  fields.update(kw)
  return trained.Shapes(**fields)


def _settings(frames=0, res=0):
  return ml_collections.ConfigDict(dict(num_frames=frames, resolution=res))


def test_unset_settings_take_the_checkpoints():
  config = _settings()
  trained.fill_input_settings(config, _shapes(), where="--checkpoint /c")
  assert (config.num_frames, config.resolution) == (8, 32)


def test_a_contradicting_resolution_names_both():
  with pytest.raises(ConfigError, match=r"config.resolution=48 contradicts --checkpoint /c: "
                                        r"resolution 48 px, but the checkpoint was trained at 32 px"):
    trained.fill_input_settings(_settings(res=48), _shapes(), where="--checkpoint /c")
  same = _settings(res=32)
  trained.fill_input_settings(same, _shapes(), where="--checkpoint /c")
  assert same.resolution == 32


def test_frames_may_be_overridden_up_to_the_temporal_table():
  one = _settings(frames=1)  # e.g. per-frame captions from a video model
  trained.fill_input_settings(one, _shapes(), where="c")
  assert one.num_frames == 1
  with pytest.raises(ConfigError, match=r"20 frames, but the checkpoint's model reads at most 16 "
                                        r"\(model.video.max_frames; trained with 8\)"):
    trained.fill_input_settings(_settings(frames=20), _shapes(), where="c")
  free = _settings(frames=20)  # a dual encoder has no table limit recorded
  trained.fill_input_settings(free, _shapes(max_frames=None), where="c")
  assert free.num_frames == 20


@pytest.mark.parametrize("variant,resolution,want", [
    ("tiny", 32, 4),        # spatial_tokens=4 pools the grid
    ("paper", 224, 256),    # G/14 at 224 px, the whole 16x16 grid
])
def test_tokens_per_frame_of_the_stage_models(variant, resolution, want):
  model = stage_configs.vlm_model(variant)
  config = {"model": model}
  shapes = trained.make_shapes(config, num_frames=8, resolution=resolution, vocab="v",
                               vocab_size=10)
  assert shapes.tokens_per_frame == want
  assert shapes.max_frames == 16
  de = trained.make_shapes({"model": stage_configs.dual_encoder_model("tiny")}, num_frames=8,
                           resolution=32, vocab="v", vocab_size=10)
  assert de.tokens_per_frame is None and de.max_frames is None


def test_shapes_round_trip_through_config_json(tmp_path):
  config = ml_collections.ConfigDict({"model": {"kind": "vlm"}, "shapes": _shapes().as_dict()})
  restore.write_config(config, str(tmp_path))
  assert trained.read_shapes(trained.read_config(str(tmp_path))) == _shapes()
  # A checkpoint's step directory finds the workdir's config.json two levels up.
  os.makedirs(tmp_path / "checkpoints" / "4")
  assert trained.read_config(str(tmp_path / "checkpoints" / "4")).shapes.resolution == 32


def test_next_stage_must_read_what_the_previous_trained_on(tmp_path):
  previous = str(tmp_path / "s1")
  os.makedirs(previous)
  with open(os.path.join(previous, "config.json"), "w") as f:
    json.dump({"model": {"kind": "vlm"}, "shapes": _shapes().as_dict()}, f)
  config = ml_collections.ConfigDict({"init": {"checkpoint": previous}})
  restore.check_init_shapes(config, _shapes(num_frames=4))  # fewer frames: fine
  with pytest.raises(ConfigError, match=r"resolution=48 but the model in init.checkpoint .*s1 "
                                        r"was trained with resolution=32"):
    restore.check_init_shapes(config, _shapes(resolution=48))
  with pytest.raises(ConfigError, match=r"vocab_size=300 .* vocab_size=467"):
    restore.check_init_shapes(config, _shapes(vocab_size=300))
