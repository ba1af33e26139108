"""Config sweeps, big_vision style: a config file lists runs; each run is one command line.

A config file (configs/.../x.py) may define, beside `get_config(arg)`, either

    def get_hyper(h):                   # h: the `Hyper` helpers below
      return h.product([h.sweep("config.optim.lr", [1e-3, 3e-3]),
                        h.sweep("arg.source", ["alt_text", "pseudo"])])

or `sweep = [{"config.optim.lr": 1e-3}, {"config.optim.lr": 3e-3}]`. Extra axes may come from the
command line (`--sweep config.optim.lr=0.001,0.003`, crossed with the file's). A key `config.a.b`
becomes the override `--config.a.b=value`; a key `arg.k` sets `k=value` in the config argument
(`x.py:quick,k=value`), for what the config derives from its argument (a stage's caption source).
Every run gets its own workdir `<base>/<name>`, the name spelled from its overrides, so rerunning a
sweep resumes each run where it stopped.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import re
import shlex
from typing import Any, Mapping, Sequence

from vidistill import config_args

# The command a config's folder belongs to, and the flag naming its output directory.
COMMANDS = {"train": ("train", "--workdir"), "eval": ("eval", "--workdir"),
            "caption": ("caption", "--output"), "data": ("data synth", "--workdir")}


class SweepError(ValueError):
  """A sweep that cannot be expanded: a bad key, an empty axis, an unknown config field."""


class Hyper:
  """The helpers `get_hyper(h)` receives. A sweep is a list of override dicts (one per run)."""

  @staticmethod
  def sweep(key: str, values: Sequence[Any]) -> list[dict[str, Any]]:
    values = list(values)
    if not values:
      raise SweepError(f"sweep({key!r}, []) has no values")
    return [{key: v} for v in values]

  @staticmethod
  def fixed(key: str, value: Any) -> list[dict[str, Any]]:
    return [{key: value}]

  @staticmethod
  def product(axes: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every combination; the last axis varies fastest."""
    return [_merge(combo) for combo in itertools.product(*axes)]

  @staticmethod
  def zipit(axes: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Axes of equal length taken together (run i gets the i-th value of each)."""
    lengths = {len(a) for a in axes}
    if len(lengths) > 1:
      raise SweepError(f"zipit needs axes of one length, got lengths {sorted(lengths)}")
    return [_merge(combo) for combo in zip(*axes)]

  @staticmethod
  def chain(sweeps: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The runs of each sweep, one sweep after the other."""
    return [dict(run) for s in sweeps for run in s]


def _merge(dicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  out: dict[str, Any] = {}
  for d in dicts:
    for key, value in d.items():
      if key in out:
        raise SweepError(f"sweep key {key!r} is set by two axes")
      out[key] = value
  return out


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  overrides: dict[str, Any]
  workdir: str
  argv: tuple[str, ...]  # The whole command line, starting with "vidistill".

  def command_line(self) -> str:
    return shlex.join(self.argv)


def split_config_spec(spec: str) -> tuple[str, str]:
  """`path/x.py:arg` -> ("path/x.py", "arg")."""
  path, _, arg = spec.partition(":")
  return path, arg


def load_module(path: str):
  if not os.path.exists(path):
    raise SweepError(f"config file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location(f"vidistill_sweep_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def parse_axis(text: str) -> list[dict[str, Any]]:
  """`config.optim.lr=0.001,0.003` -> [{"config.optim.lr": 0.001}, {"config.optim.lr": 0.003}]."""
  key, sep, values = text.partition("=")
  if not sep or not values:
    raise SweepError(f"--sweep {text!r}: expected KEY=V1,V2,... (e.g. config.optim.lr=1e-3,3e-3)")
  return Hyper.sweep(key.strip(), [config_args._literal(v.strip())  # pylint: disable=protected-access
                                   for v in values.split(",")])


def expand(module: Any, axes: Sequence[str] = ()) -> list[dict[str, Any]]:
  """The override dicts of the file's sweep crossed with the command-line axes ([{}]: one run)."""
  if hasattr(module, "get_hyper") and hasattr(module, "sweep"):
    raise SweepError("a config defines either get_hyper(h) or a `sweep` list, not both")
  runs: list[dict[str, Any]] = [{}]
  if hasattr(module, "get_hyper"):
    runs = list(module.get_hyper(Hyper()))
  elif hasattr(module, "sweep"):
    runs = [dict(r) for r in module.sweep]
  if not runs:
    raise SweepError("the config's sweep has no runs")
  extra = [parse_axis(a) for a in axes]
  return Hyper.product([runs] + extra) if extra else runs


def format_value(value: Any) -> str:
  """The text ml_collections' flag parser reads back as `value` (strings stay bare)."""
  return value if isinstance(value, str) else repr(value)


def run_name(overrides: Mapping[str, Any]) -> str:
  """`{"config.optim.lr": 0.001, "arg.source": "pseudo"}` -> "lr-0.001_source-pseudo".

  No `=` or `,`: a workdir is often passed on inside a config argument (`init=DIR`), which splits
  on commas.
  """
  if not overrides:
    return "base"
  parts = [f"{key.rsplit('.', 1)[-1]}-{format_value(v)}" for key, v in overrides.items()]
  return re.sub(r"[^A-Za-z0-9_.+-]", "-", "_".join(parts))


def command_for(config_path: str, command: str | None) -> tuple[list[str], str]:
  """The vidistill subcommand words and output-dir flag, from --command or the config's folder."""
  key = command or os.path.basename(os.path.dirname(os.path.abspath(config_path)))
  if key not in COMMANDS:
    raise SweepError(f"cannot tell which command runs {config_path!r} (its folder is {key!r}); "
                     f"pass --command, one of {sorted(COMMANDS)}")
  words, flag = COMMANDS[key]
  return words.split(), flag


def plan(config_spec: str, base_workdir: str, *, axes: Sequence[str] = (),
         command: str | None = None, extra_args: Sequence[str] = (),
         check: bool = True) -> list[Run]:
  """The runs of a sweep: names, workdirs and command lines; `check` builds every config."""
  path, arg = split_config_spec(config_spec)
  module = load_module(path)
  words, out_flag = command_for(path, command)
  runs, names = [], set()
  for overrides in expand(module, axes):
    arg_items, flags = [], []
    for key, value in overrides.items():
      if key.startswith("arg."):
        arg_items.append(f"{key[4:]}={format_value(value)}")
      elif key.startswith("config."):
        flags.append(f"--{key}={format_value(value)}")
      else:
        raise SweepError(f"sweep key {key!r} must start with 'config.' (a config field) or "
                         "'arg.' (an item of the config argument)")
    run_arg = ",".join([a for a in [arg] if a] + arg_items)
    if check:
      _check(module, path, run_arg, overrides)
    name = run_name(overrides)
    if name in names:
      raise SweepError(f"two runs of the sweep are both named {name!r}: their overrides repeat")
    names.add(name)
    workdir = os.path.join(base_workdir, name)
    spec = f"{path}:{run_arg}" if run_arg else path
    argv = ["vidistill", *words, "--config", spec, *flags, f"{out_flag}={workdir}", *extra_args]
    runs.append(Run(name, dict(overrides), workdir, tuple(argv)))
  return runs


def _check(module: Any, path: str, arg: str, overrides: Mapping[str, Any]) -> None:
  """Builds the run's config and applies its overrides, so a typo fails before anything runs."""
  try:
    config = module.get_config(arg or None)
  except config_args.ConfigError as e:
    raise SweepError(f"{path}:{arg}: {e}") from None
  config.lock()
  fields = {k[len("config."):]: v for k, v in overrides.items() if k.startswith("config.")}
  for key, value in fields.items():
    try:
      config.update_from_flattened_dict({key: value})
    except (KeyError, AttributeError) as e:
      raise SweepError(f"sweep key 'config.{key}' is not a field of {path}:{arg} ({e})") from None
    except TypeError as e:
      raise SweepError(f"sweep value config.{key}={value!r} has the wrong type: {e}") from None
