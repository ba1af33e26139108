"""vidistill/models/vlm_text.py: a config's decode block -> vlm.DecodeConfig, defaults in one place."""
import dataclasses

import pytest

from vidistill.config_args import ConfigError
from vidistill.models import vlm, vlm_text


def test_an_empty_block_gives_decode_configs_own_defaults():
  assert vlm_text.decode_config({}) == vlm.DecodeConfig()


def test_block_names_map_onto_fields_and_samples_only_when_sampling():
  settings = {"method": "sample", "max_decode_len": "16", "length_penalty": 0.5, "top_k": 3}
  got = vlm_text.decode_config(settings, num_samples=4)
  assert got == dataclasses.replace(vlm.DecodeConfig(), method="sample", max_decode_len=16,
                                    length_penalty=0.5, top_k=3, num_samples=4)
  assert vlm_text.decode_config({"method": "beam"}, num_samples=4).num_samples == 1


def test_unknown_settings_are_named():
  with pytest.raises(ConfigError, match=r"\['max_len'\] are not known"):
    vlm_text.decode_config({"max_len": 8})
