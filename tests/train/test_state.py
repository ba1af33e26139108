"""Parameter paths and regex masks (the language of freezing, weight decay and key maps)."""
import jax.numpy as jnp
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import param_paths
from vidistill.train import state as state_lib

PARAMS = {"img": {"Dense_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}},
          "llm": {"layers_0": {"kernel": jnp.ones((3, 3))}, "embed": jnp.ones((5, 3))}}


def test_path_names_are_slash_joined():
  assert sorted(param_paths.path_names(PARAMS)) == [
      "img/Dense_0/bias", "img/Dense_0/kernel", "llm/embed", "llm/layers_0/kernel"]


def test_regex_mask_uses_fullmatch():
  mask = state_lib.regex_mask(PARAMS, ["llm/.*", "img/Dense_0/bias"])
  assert mask["llm"]["embed"] and mask["llm"]["layers_0"]["kernel"]
  assert mask["img"]["Dense_0"]["bias"] and not mask["img"]["Dense_0"]["kernel"]
  # "llm" alone is not a full path: it matches nothing (and says so).
  with pytest.raises(ConfigError, match="'llm' matches no parameter"):
    state_lib.regex_mask(PARAMS, ["llm"])
  assert not any(state_lib.jax.tree.leaves(
      state_lib.regex_mask(PARAMS, ["llm"], must_match=False)))


def test_bad_regex_is_named():
  with pytest.raises(ConfigError, match=r"'img/\(' is not a valid regex"):
    state_lib.regex_mask(PARAMS, ["img/("])


def test_count_params_with_mask():
  mask = state_lib.regex_mask(PARAMS, ["img/.*"])
  assert state_lib.count_params(PARAMS) == 6 + 3 + 9 + 15
  assert state_lib.count_params(PARAMS, mask) == 9


def test_new_state_fields():
  s = state_lib.new_state(PARAMS, (), jnp.zeros(2, jnp.uint32))
  assert int(s.step) == 0 and int(s.nonfinite_step) == -1 and int(s.skipped_steps) == 0
