"""Every command shown in the docs runs or is checked, so the docs cannot drift from the code.

Every docs/*.md and README.md is covered (a new doc too). Its fenced blocks are labelled:

- ```bash: commands (a line, or lines joined by `\\`); this test runs each block with bash
  (-euo pipefail) from the repository root, the blocks of a file in order, in one scratch directory
  `$WORK`. Commands are kept cheap there: --help, --dry_run, tiny variants (seconds).
- ```bash slow: runs only with `-m slow` (training a tiny stage: about a minute); fast blocks must
  not depend on slow ones.
- ```bash long: commands that take many minutes or need what CI has not (a whole pipeline, a full
  benchmark, real data sets or weights, paths outside `$WORK`). They are checked, not run: each
  `vidistill COMMAND ...` (or `python -m MODULE ...`) in them, also inside `a && b` chains, must
  name a real command (vidistill/cli.py COMMANDS) or module, and its arguments must parse as that
  command parses them: every --flag one the command defines, `--config path.py:arg` a config file
  that loads with that argument, every `--config.x=v` a field of it (tests/docs_command_check.py).
  `pipeline` and `train` then run with --dry_run (seconds: every config and model shape resolved;
  a `:paper` config's only with `-m slow`; a `train` that needs the world an earlier command of
  the block writes is only parsed).
  `$VAR`s are expanded and `[--flag V]` is read as an optional flag.
- ```text / ```python: anything that is not a command; a `vidistill ...` line there is an error.

`gcloud`, `srun`, `sbatch` and `scontrol` are fakes that record their arguments
(tests/launch/fake_tools.py). The README's block between `<!-- ci-test-command -->` markers is the
CI command itself (it runs this suite): it is left out.
"""
import collections
import glob
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = tuple(sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
                    )) + ("README.md",)
KINDS = ("bash", "bash slow", "bash long", "text", "python")
CI_MARKER = "<!-- ci-test-command -->"
# `vidistill` as the entry point runs it (cli.py's table); overridable while a branch wires it.
CLI_MODULE = "vidistill.cli"
DRY_RUN_COMMANDS = ("pipeline", "train")  # ```bash long: also run with --dry_run.
_PAPER = re.compile(r"\.py:paper\b")  # Their dry runs take ~20 s: only with `-m slow`.
_COMMAND = re.compile(r"\s*(\$ )?(vidistill [a-z]+( |$)|launch/\S+\.(sh|sbatch)|sbatch )")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
_SEPARATORS = ("&&", "||", ";", "|", "&")

sys.path.insert(0, os.path.join(ROOT, "tests", "launch"))
import fake_tools  # pylint: disable=g-import-not-at-top,wrong-import-position
from vidistill import cli  # pylint: disable=g-import-not-at-top,wrong-import-position


def blocks(name):
  """[(info string, body)] of the fenced blocks of <name> (relative to the repository root), less
  the README's CI command block."""
  with open(os.path.join(ROOT, name), encoding="utf-8") as f:
    text = f.read()
  return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)
          if not text[:m.start()].rstrip().endswith(CI_MARKER)]


def test_docs_are_found():
  assert "docs/pipeline.md" in DOCS and "docs/configs.md" in DOCS and "README.md" in DOCS
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    assert CI_MARKER in f.read(), "README.md lost its CI command markers: update CI_MARKER"


@pytest.mark.parametrize("name", DOCS)
def test_commands_are_only_in_runnable_blocks(name):
  for info, body in blocks(name):
    assert info in KINDS, (
        f"{name}: block ```{info}: use ```bash (run by this test), ```bash slow, ```bash long "
        "(checked, not run), ```text or ```python")
    if info in ("text", "python"):
      commands = [l for l in body.splitlines() if _COMMAND.match(l)]
      assert not commands, f"{name}: commands outside a ```bash block: {commands}"


def shell_commands(body):
  """[(line, words)]: the simple commands of a bash block, `\\`-joined lines split at && || ; | &,
  comments dropped, `$VAR`s expanded, `[--flag V]` unbracketed."""
  found = []
  for line in body.replace("\\\n", " ").splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words, optional = [], False
    for word in lexer:
      if word in _SEPARATORS:
        if words:
          found.append((line.strip(), words))
        words = []
        continue
      if word.startswith("[-"):
        word, optional = word[1:], True
      if optional and word.endswith("]"):
        word, optional = word[:-1], False
      words.append(os.path.expandvars(word))
    if words:
      found.append((line.strip(), words))
  return found


def _command_of_module(module):
  """The vidistill command `python -m <module>` is, or None."""
  for name, command in cli.COMMANDS.items():
    if command.module and module in (command.module, command.module.rsplit(".", 1)[0]):
      return name
  return None


def long_commands(name):
  """[(block index, line, command, argv)] of the `vidistill` commands of <name>'s ```bash long
  blocks; a `python -m MODULE` that is no command has command None (its module must exist)."""
  found = []
  for i, (info, body) in enumerate(blocks(name)):
    if info != "bash long":
      continue
    before = len(found)
    for line, words in shell_commands(body):
      if words[0] == "vidistill" and len(words) > 1 and not words[1].startswith("-"):
        found.append((i, line, words[1], words[2:]))
      elif words[0] in ("python", "python3") and words[1:2] == ["-m"] and len(words) > 2:
        command = _command_of_module(words[2])
        found.append((i, line, command, words[3:] if command else [words[2]]))
    assert len(found) > before, f"{name} block {i}: ```bash long without a vidistill command"
  return found


def _env(tmp_path):
  env = fake_tools.install(str(tmp_path / "bin"), tmp_path / "calls.jsonl")
  # sbatch runs the job script directly, inside a fake two-node allocation.
  sbatch = tmp_path / "bin" / "sbatch"
  sbatch.write_text("#!/bin/bash\nwhile [[ \"$1\" == --* ]]; do shift; done\n"
                    "SLURM_JOB_NODELIST=n[1-2] SLURM_JOB_ID=7 SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=1 "
                    "exec bash \"$@\"\n")
  sbatch.chmod(0o755)
  vidistill = tmp_path / "bin" / "vidistill"  # Replaces fake_tools' recorder: the real command.
  # The guard: `data synth` renders in spawned worker processes, which import this script as
  # __mp_main__; unguarded, each worker would start the whole command again (a hang).
  vidistill.write_text(f"#!{sys.executable}\nimport runpy\nif __name__ == '__main__':\n"
                       f"  runpy.run_module({CLI_MODULE!r}, run_name='__main__')\n")
  vidistill.chmod(0o755)
  work = tmp_path / "work"
  work.mkdir()
  env.update(WORK=str(work), MPLBACKEND="agg", VIDISTILL_PYTHON=sys.executable)
  # A reader's shell has one CPU device, not the 8 fake ones of tests/conftest.py (a tiny batch of 4
  # does not divide over 8).
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  # `python` in the docs is the one vidistill is installed in.
  env["PATH"] = os.pathsep.join([str(tmp_path / "bin"), os.path.dirname(sys.executable),
                                 env["PATH"]])
  return env


def _run_blocks(name, tmp_path, include_slow):
  env = _env(tmp_path)
  ran = 0
  for i, (info, body) in enumerate(blocks(name)):
    if info == "bash" or (include_slow and info == "bash slow"):
      out = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
      assert out.returncode == 0, (f"{name} block {i} failed ({out.returncode}):\n{body}\n"
                                   f"--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}")
      ran += 1
  return ran


@pytest.mark.parametrize("name", DOCS)
def test_fast_commands_run(name, tmp_path):
  _run_blocks(name, tmp_path, include_slow=False)


def _check_long_commands(tmp_path, include_slow):
  """{(doc, block index, line): error or ""} for every command of every ```bash long block, checked
  by one tests/docs_command_check.py process (TensorFlow starts once). The dry runs of `:paper`
  configs (ViT-G + UL2-3B shapes: ~20 s) only with `include_slow`."""
  by_command = collections.defaultdict(list)
  results = {}
  for name in DOCS:
    for i, line, command, argv in long_commands(name):
      key = (name, i, line)
      if command is None:
        results[key] = "" if importlib.util.find_spec(argv[0]) else f"no module {argv[0]}"
      elif command not in cli.COMMANDS:
        results[key] = f"unknown command {command!r}; expected one of {', '.join(cli.COMMANDS)}"
      else:
        by_command[command].append((key, argv))
  requests = [(command, key, argv) for command, runs in by_command.items() for key, argv in runs]
  requests_path, results_path = tmp_path / "requests.json", tmp_path / "results.json"
  requests_path.write_text(json.dumps([
      {"command": c, "argv": argv, "dry_run": c in DRY_RUN_COMMANDS and (
          include_slow or not any(_PAPER.search(a) for a in argv))}
      for c, _, argv in requests]))
  out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "docs_command_check.py"),
                        str(requests_path), str(results_path)], cwd=ROOT, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, f"docs_command_check.py failed:\n{out.stderr[-3000:]}"
  for (_, key, _), result in zip(requests, json.loads(results_path.read_text())):
    results[key] = "" if result["ok"] else result["error"]
  return results


def _errors(results, name=None):
  return [f"{n} block {i}: {line}\n  {error}" for (n, i, line), error in results.items()
          if (name is None or n == name) and error]


@pytest.fixture(scope="module")
def long_results(tmp_path_factory):
  return _check_long_commands(tmp_path_factory.mktemp("long"), include_slow=False)


@pytest.mark.parametrize("name", [n for n in DOCS if any(i == "bash long" for i, _ in blocks(n))])
def test_long_commands_parse(name, long_results):
  errors = _errors(long_results, name)
  assert not errors, "```bash long commands that do not parse:\n" + "\n".join(errors)


@pytest.mark.slow
def test_long_commands_parse_with_all_dry_runs(tmp_path):
  errors = _errors(_check_long_commands(tmp_path, include_slow=True))
  assert not errors, "```bash long commands that do not parse:\n" + "\n".join(errors)


@pytest.mark.slow
@pytest.mark.long  # Trains tiny stages end to end: 252 s for both docs on 2 cores (CI runs it).
@pytest.mark.parametrize("name", [n for n in DOCS if any(i == "bash slow" for i, _ in blocks(n))])
def test_all_commands_run(name, tmp_path):
  _run_blocks(name, tmp_path, include_slow=True)


def test_readme_indexes_every_docs_page():
  """The README's documentation table links every page of docs/ (a new page too)."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  pages = [d for d in DOCS if d.startswith("docs/")]
  assert pages and [p for p in pages if f"]({p})" not in readme] == []
