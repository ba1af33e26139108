"""Shared absl flag handling for `vidistill <command>`: --config, overrides, --workdir, --help."""
from __future__ import annotations

import errno
import logging as pylogging
import os
import re
import sys
import traceback
from types import ModuleType
from typing import Any, Callable, NoReturn, Sequence

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
    if not getattr(sys.unraisablehook, "quiet_closed_loops", False):
      sys.unraisablehook = _without_closed_loop_noise(sys.unraisablehook)
    try:
      main(list(parsed[1:]))
    except CommandError as e:
      print(f"{prog}: error: {e}", file=sys.stderr)
      sys.exit(e.code)
    except Exception as e:  # pylint: disable=broad-except
      full = _no_space(e)
      if full is None:
        raise
      where = f" writing {full.filename}" if full.filename else ""
      print(f"{prog}: error: no space left on the device{where}; free some space and rerun the "
            "same command: it resumes from what was committed (the last complete checkpoint, "
            "the committed caption units)", file=sys.stderr)
      # A failed orbax save leaves futures holding the ENOSPC error; at interpreter shutdown asyncio
      # would log each as "exception was never retrieved" with its traceback. What was committed is
      # on disk already, so nothing is lost by skipping the shutdown.
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(EXIT_NO_SPACE)

  app.run(_main, argv=[prog] + argv, flags_parser=lambda a: _parse_flags(prog, a))


def _parse_flags(prog: str, argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag or config value is one line and exit code 2, not a traceback."""
  try:
    parsed = flags.FLAGS(list(argv))
  except flags.Error as e:
    _fail(prog, _concise(str(e)))
  except (KeyError, AttributeError) as e:
    # ml_collections raises these for an override of a field the (locked) config does not have.
    given = [a for a in argv if a.startswith("--config.")]
    _fail(prog, f"the config has no field {_key_error_text(e, given)} (overrides given: {given}); "
          "check the spelling against the config file")
  except SyntaxError as e:
    # A config file that is not valid Python: ml_collections lets the SyntaxError through.
    _fail(prog, f"config file {e.filename} line {e.lineno}: {e.msg}; fix the file, or give "
          "another with --config path.py[:arg]")
  except Exception as e:  # pylint: disable=broad-except
    # Anything else raised while a config file's get_config() runs (a NameError, an ImportError):
    # where it happened and what it says, without the parser's frames around it.
    frame = traceback.extract_tb(e.__traceback__)[-1]
    _fail(prog, f"loading the config failed at {frame.filename}:{frame.lineno}: "
          f"{type(e).__name__}: {e}")
  for name in flags.FLAGS:
    error = _config_load_error(flags.FLAGS[name].value)
    if error:
      _fail(prog, f"--{name}: {error}")
  return parsed


def _no_space(error: BaseException | None) -> OSError | None:
  """The ENOSPC OSError behind `error` (libraries such as orbax wrap it), or None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return error
    if "No space left on device" in str(error):
      return OSError(errno.ENOSPC, "No space left on device")
    error = error.__cause__ or error.__context__
  return None


def _without_closed_loop_noise(hook: Callable[[Any], None]) -> Callable[[Any], None]:
  """`hook`, except for `RuntimeError('Event loop is closed')`.

  When an orbax write fails (a full disk), the background thread's event loop closes while
  tensorstore still has completions to deliver to it; each one raises this error in a C++ callback,
  where Python can only report it as unraisable: dozens of tracebacks that say nothing the real error
  does not. Every other unraisable exception still reaches `hook`.
  """
  def filtered(unraisable: Any) -> None:
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
      return
    hook(unraisable)
  filtered.quiet_closed_loops = True
  return filtered


def _fail(prog: str, message: str) -> NoReturn:
  print(f"{prog}: error: {message}", file=sys.stderr)
  sys.exit(2)


def _key_error_text(error: BaseException, given: Sequence[str]) -> str:
  """The unknown field of a KeyError from a --config.x.y override, as `'x.y' (did you mean ...)`.

  ml_collections nests the KeyError of a dotted override in another, so str() of it is the repr of
  a repr; the field and the suggestion are read back out of that text.
  """
  text = str(error)
  names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
  field = names[0] if names else text
  dotted = [g.split("=", 1)[0][len("--config."):] for g in given]
  field = next((d for d in dotted if d.split(".")[-1] == field), field)
  hint = re.search(r"Did you mean [\\'\"]*([A-Za-z0-9_]+)", text)
  return f"{field!r}" + (f" (did you mean {hint.group(1)!r}?)" if hint else "")


def _config_load_error(value: Any) -> str | None:
  """The one-line reason a --config file failed to load, or None. ml_collections stores an
  unreadable file's error in a stand-in config that raises on first use, deep inside a command."""
  if type(value).__name__ != "_ErrorConfig":
    return None
  error = object.__getattribute__(value, "_error")
  text = str(error)
  missing = re.search(r"Attempted \[[^\]]*\]:\s*(\S+)\s*\[Errno 2\]", text)
  if missing:
    return (f"config file {missing.group(1)!r} does not exist; give an existing file, e.g. "
            "--config configs/train/visual_adaptation.py:tiny")
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  return f"the config file could not be read: {' '.join(lines[-2:])}"


def _concise(message: str) -> str:
  # ml_collections wraps an error raised inside get_config() in the whole traceback text; what a
  # user needs is the flag it came from and the exception's own last line.
  lines = [l.strip() for l in message.splitlines() if l.strip()]
  if not any(l.startswith("Traceback") for l in lines):
    return " ".join(lines)
  error = next((l for l in reversed(lines) if ": " in l and not l.startswith("File ")), lines[-1])
  return f"{lines[0]} {error.split(': ', 1)[-1]}"


class _QuietLibraries(pylogging.Filter):
  """Drops INFO lines of libraries that narrate every step (orbax: ~30 lines per checkpoint), and
  the tracebacks of their error lines."""
  NOISY = ("/orbax/", "/etils/", "/tensorstore/")

  def filter(self, record: pylogging.LogRecord) -> bool:
    if not any(part in record.pathname for part in self.NOISY):
      return True
    if record.exc_info:
      # orbax logs each failed background write with its traceback (a full disk: a dozen);
      # the command reports the cause once, so the line without the traceback is enough.
      record.exc_info, record.exc_text = None, None
    return record.levelno >= pylogging.WARNING


# Exit codes of every command (docs/training.md, docs/captioning.md list them).
EXIT_USAGE = 2         # The command, its config or its inputs are wrong; nothing was damaged.
EXIT_NO_SPACE = 3      # A write failed for lack of disk space; rerun the same command to resume.
EXIT_FAILED = 1        # The run itself failed (e.g. a NaN loss); the message says why.


class CommandError(Exception):
  """Ends a command with a one-line message (no traceback) and exit code `code`."""

  def __init__(self, message: str, code: int = EXIT_FAILED):
    super().__init__(message)
    self.code = code


class UsageError(CommandError):
  """A command-line mistake: printed as one line (no traceback) and exit code 2."""

  def __init__(self, message: str):
    super().__init__(message, EXIT_USAGE)


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
