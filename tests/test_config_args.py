"""The `get_config(arg)` argument parser, config checks and duration resolution."""
import pytest

from vidistill import config_args
from vidistill.config_args import ConfigError


def test_parse_arg_types_and_variant():
  c = config_args.parse_arg("quick,frames=16,res=64,runlocal,lr=0.5", variant="default",
                            frames=8, res=32, runlocal=False, lr=1e-3)
  assert c.variant == "quick" and c.frames == 16 and c.res == 64 and c.runlocal is True
  assert isinstance(c.lr, float) and c.lr == 0.5


def test_parse_arg_defaults_when_empty():
  c = config_args.parse_arg("", variant="default", frames=8)
  assert c.variant == "default" and c.frames == 8


@pytest.mark.parametrize("arg, message", [
    ("frames=sixteen", "frames='sixteen': expected an integer"),
    ("fps=2", "'fps'.*not known"),
    ("runlocal=maybe", "expected a bool"),
])
def test_parse_arg_errors_name_key_and_value(arg, message):
  with pytest.raises(ConfigError, match=message):
    config_args.parse_arg(arg, variant="default", frames=8, runlocal=False)


def test_lazy_accepts_unknown_keys():
  c = config_args.parse_arg("extra=3", lazy=True, variant="x")
  assert c.extra == 3


def test_checks_name_key_and_value():
  c = {"optim": {"lr": -1.0, "name": "adamx"}}
  with pytest.raises(ConfigError, match=r"config.optim.lr=-1.0"):
    config_args.check_positive(c, "optim.lr")
  with pytest.raises(ConfigError, match=r"config.optim.name='adamx' is not one of"):
    config_args.check_choice(c, "optim.name", ["adamw", "sgd"])
  with pytest.raises(ConfigError, match=r"config.optim.b1 is missing"):
    config_args.check_positive(c, "optim.b1")


def test_resolve_steps_units():
  assert config_args.resolve_steps("total", {"total_steps": 7}, examples_per_step=4) == 7
  assert config_args.resolve_steps("total", {"total_examples": 400}, examples_per_step=8) == 50
  assert config_args.resolve_steps("total", {"total_epochs": 2}, examples_per_step=10,
                                   dataset_size=55) == 11
  with pytest.raises(ConfigError, match="exactly one"):
    config_args.resolve_steps("total", {"total_steps": 1, "total_epochs": 1}, examples_per_step=1)
  with pytest.raises(ConfigError, match="dataset size"):
    config_args.resolve_steps("total", {"total_epochs": 1}, examples_per_step=1)


def test_load_config_file_with_argument(tmp_path):
  path = tmp_path / "c.py"
  path.write_text("import ml_collections\n"
                  "def get_config(arg=None):\n"
                  "  return ml_collections.ConfigDict({'arg': arg})\n")
  assert config_args.load_config(f"{path}:tiny,x=1").arg == "tiny,x=1"
  assert config_args.load_config(str(path)).arg is None
  with pytest.raises(ConfigError, match="does not exist"):
    config_args.load_config(str(tmp_path / "missing.py") + ":tiny")
