"""Shared absl flag handling for `vidistill <command>`: --config, overrides, --workdir, --help."""
from __future__ import annotations

import logging as pylogging
import sys
from types import ModuleType
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags


def define_config_and_workdir(default_config: str | None = None, *, workdir_help: str = "") -> None:
  """Defines `--config path.py[:arg]` (+ `--config.key=value` overrides) and `--workdir`."""
  config_flags.DEFINE_config_file(
      "config", default_config,
      "ml_collections config file, optionally with an argument: `path/to/config.py:variant,key=value`."
      " Override any field with `--config.field.sub=value`; unknown fields are an error.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, workdir_help or "Directory for this job's outputs (created).")


def define_once(define: Callable[..., Any], name: str, default: Any, help_: str) -> None:
  """`define(name, default, help_)` unless an earlier command in this process defined `name`
  (absl flags are process-global; the pipeline runs several commands' code in one process)."""
  if name not in flags.FLAGS:
    define(name, default, help_)


def run_command(prog: str, argv: Sequence[str], doc: str, flag_modules: Sequence[ModuleType],
                main: Callable[[Sequence[str]], None]) -> None:
  """Parses `argv` (without the command name) and calls `main(positional_args)` via absl."""
  argv = list(argv)
  if any(a in ("-h", "--help", "-?") for a in argv):
    print(doc.strip())
    print("\nflags:")
    for module in flag_modules:
      text = flags.FLAGS.module_help(module)
      if text:
        print(text)
    print("\n(`--helpfull` lists absl's own flags too.)")
    sys.exit(0)

  def _main(parsed: Sequence[str]) -> None:
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_QuietLibraries())
    try:
      main(list(parsed[1:]))
    except UsageError as e:
      print(f"{prog}: error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(_main, argv=[prog] + argv, flags_parser=lambda a: _parse_flags(prog, a))


def _parse_flags(prog: str, argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag or config value is one line and exit code 2, not a traceback."""
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    print(f"{prog}: error: {_concise(str(e))}", file=sys.stderr)
    sys.exit(2)
  except (KeyError, AttributeError) as e:
    # ml_collections raises these for an override of a field the (locked) config does not have.
    field = str(e).strip("\"'")
    given = [a for a in argv if a.startswith("--config.")]
    print(f"{prog}: error: the config has no field {field!r} (overrides given: {given}); "
          "check the spelling against the config file", file=sys.stderr)
    sys.exit(2)


def _concise(message: str) -> str:
  # ml_collections wraps an error raised inside get_config() in the whole traceback text; what a
  # user needs is the flag it came from and the exception's own last line.
  lines = [l.strip() for l in message.splitlines() if l.strip()]
  if not any(l.startswith("Traceback") for l in lines):
    return " ".join(lines)
  error = next((l for l in reversed(lines) if ": " in l and not l.startswith("File ")), lines[-1])
  return f"{lines[0]} {error.split(': ', 1)[-1]}"


class _QuietLibraries(pylogging.Filter):
  """Drops INFO lines of libraries that narrate every step (orbax: ~30 lines per checkpoint)."""
  NOISY = ("/orbax/", "/etils/", "/tensorstore/")

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno >= pylogging.WARNING or not any(
        part in record.pathname for part in self.NOISY)


class UsageError(Exception):
  """A command-line mistake: printed as one line (no traceback) and exit code 2."""


def config_from_flags(required: bool = True):
  """Returns the parsed --config, or raises UsageError naming the flag when it is missing."""
  config = flags.FLAGS.config
  if config is None and required:
    raise UsageError("--config is required, e.g. --config configs/data/synthetic.py:tiny")
  return config


def workdir_from_flags() -> str:
  workdir = flags.FLAGS.workdir
  if not workdir:
    raise UsageError("--workdir is required: the directory this job writes into")
  return workdir
