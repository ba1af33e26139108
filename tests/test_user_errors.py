"""Wrong commands, as a user types them: each is the real CLI in a subprocess.

Every case asserts the documented exit code, at most a few lines of error text that name the bad
value (absl's own log lines aside), no traceback, and that the command left the workdir or output
byte-identical (or absent, when it did not exist before).
"""
import hashlib
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
_LOG_LINE = re.compile(r"^[IWEF]\d{4} ")  # absl's log prefix: I1206 07:45:17.366362 ...


def vidistill(*args, timeout=300, cwd=None):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "vidistill.cli", *map(str, args)],
                        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def snapshot(path):
  """{relative path: sha256 of the bytes, or "dir"} of everything under `path` (None: absent)."""
  if not os.path.exists(path):
    return None
  out = {}
  for root, dirs, files in os.walk(path):
    for d in dirs:
      out[os.path.relpath(os.path.join(root, d), path)] = "dir"
    for f in files:
      full = os.path.join(root, f)
      with open(full, "rb") as fh:
        out[os.path.relpath(full, path)] = hashlib.sha256(fh.read()).hexdigest()
  return out


def assert_user_error(result, *expected, code=2, max_lines=3):
  """Exit `code`, no traceback, <= max_lines lines besides log lines, each `expected` in them."""
  text = result.stderr
  errors = [l for l in text.splitlines() if l.strip() and not _LOG_LINE.match(l)]
  context = f"exit {result.returncode}; stderr:\n{text[-3000:]}"
  assert result.returncode == code, context
  assert "Traceback" not in text, context
  assert 1 <= len(errors) <= max_lines, context
  for fragment in expected:
    assert fragment in "\n".join(errors), f"{fragment!r} not in the error; {context}"


# ------------------------------------------------------------------------------ --config files


@pytest.fixture(scope="module")
def bad_configs(tmp_path_factory):
  root = tmp_path_factory.mktemp("configs")
  (root / "broken.py").write_text("def get_config(arg=None):\n  return (\n")
  (root / "raises.py").write_text("def get_config(arg=None):\n  return undefined_name\n")
  return root


# One case per command (each subprocess pays the CLI's start-up, ~8 s on 2 cores).
@pytest.mark.parametrize("command, config, message", [
    (["train", "--workdir", "W"], "missing.py:tiny", "config file '{root}/missing.py' does not exist"),
    (["caption", "--checkpoint", "ck", "--input", "in.csv", "--output", "W"], "broken.py:tiny",
     "config file {root}/broken.py line 2: '(' was never closed"),
    (["data", "synth", "--workdir", "W"], "raises.py",
     "{root}/raises.py:2: NameError: name 'undefined_name' is not defined"),
    (["eval", "--checkpoint", "ck", "--workdir", "W"], "missing.py",
     "config file '{root}/missing.py' does not exist"),
])
def test_unreadable_config_file_is_one_line(bad_configs, tmp_path, command, config, message):
  workdir = tmp_path / "work"
  args = [str(workdir) if a == "W" else a for a in command]
  result = vidistill(*args, "--config", bad_configs / config)
  assert_user_error(result, "vidistill " + command[0], message.format(root=bad_configs))
  assert not workdir.exists()


@pytest.mark.parametrize("override, message", [
    ("--config.optim.lrr=3", "no field 'optim.lrr' (did you mean 'lr'?)"),
    ("--config.data.seq_lengths.inputz=3", "no field 'data.seq_lengths.inputz' (did you mean "
     "'inputs'?)"),
    ("--config.nope=3", "no field 'nope'"),
])
def test_unknown_config_field_names_its_dotted_path(tmp_path, override, message):
  result = vidistill("train", "--config", f"{CONFIGS}/train/image_pretrain.py:tiny", override,
                     "--workdir", tmp_path / "w")
  assert_user_error(result, message)
  assert "\\" not in result.stderr
