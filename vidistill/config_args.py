"""Config-file helpers: the `get_config(arg)` argument parser and config validation.

Config files live in `configs/` and take an argument string, big_vision style:
`configs/pipeline.py:quick` or `configs/train/visual_adaptation.py:tiny,steps=200`. The first
bare word is usually a named variant; `key=value` items override typed defaults.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any, Iterable, Mapping

import ml_collections


class ConfigError(ValueError):
  """A config value is missing, of the wrong type, or out of range."""


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_arg(arg: str | None, *, lazy: bool = False, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses `"tiny,frames=16,res=224,runlocal"` into a ConfigDict typed by `defaults`.

  A bare word `w` means `w=True` when `w` is a bool default, and otherwise it is the value of the
  first string-typed default whose value is "" or listed first (`variant` by convention).
  Unknown keys fail with the list of known ones (unless `lazy`).
  """
  result = ml_collections.ConfigDict(dict(defaults))
  if not arg:
    return result
  for item in (s.strip() for s in arg.split(",")):
    if not item:
      continue
    if "=" in item:
      key, raw = (s.strip() for s in item.split("=", 1))
    elif isinstance(defaults.get(item), bool):
      key, raw = item, "True"
    elif "variant" in defaults:
      key, raw = "variant", item
    else:
      key, raw = item, "True"
    if key not in defaults:
      if not lazy:
        raise ConfigError(
            f"config argument {key!r} (from {item!r}) is not known; known arguments: "
            f"{sorted(defaults)}")
      result[key] = _literal(raw)
      continue
    default = defaults[key]
    value = raw if isinstance(default, str) else _literal(raw)
    if isinstance(default, bool):
      if str(raw).lower() in ("true", "1", "yes"):
        value = True
      elif str(raw).lower() in ("false", "0", "no"):
        value = False
      else:
        raise ConfigError(f"config argument {key}={raw!r}: expected a bool (True/False)")
    elif isinstance(default, int) and not isinstance(value, int):
      raise ConfigError(f"config argument {key}={raw!r}: expected an integer")
    elif isinstance(default, float) and not isinstance(value, (int, float)):
      raise ConfigError(f"config argument {key}={raw!r}: expected a number")
    result[key] = type(default)(value) if isinstance(default, float) else value
  return result


def check_choice(config: Mapping[str, Any], key: str, choices: Iterable[Any]) -> None:
  """Raises ConfigError naming `key` and its value when it is not one of `choices`."""
  value = _get(config, key)
  choices = list(choices)
  if value not in choices:
    raise ConfigError(f"config.{key}={value!r} is not one of {choices}")


def check_positive(config: Mapping[str, Any], *keys: str) -> None:
  """Raises ConfigError naming the first key whose value is not > 0."""
  for key in keys:
    value = _get(config, key)
    if not isinstance(value, (int, float)) or value <= 0:
      raise ConfigError(f"config.{key}={value!r} must be a positive number")


def _get(config: Any, dotted: str) -> Any:
  node = config
  for part in dotted.split("."):
    try:
      node = node[part]
    except (KeyError, AttributeError, TypeError):
      raise ConfigError(f"config.{dotted} is missing (no key {part!r})") from None
  return node


def resolve_steps(prefix: str, config: Mapping[str, Any], *, examples_per_step: int,
                  dataset_size: int | None = None) -> int:
  """Resolves one of `{prefix}_steps`, `{prefix}_examples`, `{prefix}_epochs` to a step count.

  Durations in configs are given in whichever unit reads best (big_vision's `get_steps`); exactly
  one of the three may be set.
  """
  given = {unit: config.get(f"{prefix}_{unit}") for unit in ("steps", "examples", "epochs")}
  given = {u: v for u, v in given.items() if v is not None}
  if len(given) != 1:
    raise ConfigError(
        f"set exactly one of {prefix}_steps / {prefix}_examples / {prefix}_epochs; got {given or 'none'}")
  (unit, value), = given.items()
  if unit == "steps":
    return int(value)
  if unit == "examples":
    return max(1, int(round(value / examples_per_step)))
  if dataset_size is None:
    raise ConfigError(f"{prefix}_epochs={value} needs a known dataset size; give {prefix}_steps instead")
  return max(1, int(round(value * dataset_size / examples_per_step)))


def pick_variant(name: str, variants: Mapping[str, Any], config_file: str) -> Any:
  """`variants[name]`, or a ConfigError naming the file, the bad name and the known ones."""
  if name not in variants:
    raise ConfigError(f"unknown variant {name!r} for {config_file}; expected one of {list(variants)}")
  return variants[name]


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`"path/to/config.py[:arg]"` -> its `get_config(arg)`, as `--config` would load it."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} (from {spec!r}) does not exist")
  module_spec = importlib.util.spec_from_file_location(
      "vidistill_config_" + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()
