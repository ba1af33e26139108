"""Checks `vidistill <command>` lines of the docs' ```bash long blocks without running them in full.

    python tests/docs_command_check.py REQUESTS.json RESULTS.json

REQUESTS.json: a list of {"command": COMMAND, "argv": [flags and arguments after `vidistill
COMMAND`], "dry_run": bool}, grouped by command. Each argv is parsed exactly as `vidistill COMMAND`
parses it (the command's own flags, its `--config path.py:arg` loaded with that argument, every
`--config.x=v` override applied to it), but the command's main is not called: an unknown flag, a
bad value, a missing config file or an unknown config field is an error. `data`'s sub-command and
`bench`'s benchmark names are checked too. With "dry_run", the command's main then runs with
--dry_run set (pipeline, train: resolve every config and model shape; seconds), once per distinct
config; a `train` whose dry run needs the synthetic world's vocabulary that an earlier command in
the docs writes is only parsed. RESULTS.json: [{"ok": bool, "error": str, "seconds": float}].
absl flags are process-global and commands define different ones: on switching commands, every
flag defined after the imports (by a command's run()) is deleted.
"""
import contextlib
import importlib
import io
import json
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from vidistill import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from vidistill import tf_quiet  # pylint: disable=g-import-not-at-top,wrong-import-position
from vidistill.data import vocab  # pylint: disable=g-import-not-at-top,wrong-import-position


def _check_positional(command, module, positional):
  if command == "data":
    if not positional or positional[0] not in module.SUBCOMMANDS:
      raise ValueError(f"vidistill data: sub-command {positional[:1]} is not one of "
                       f"{module.SUBCOMMANDS}")
  elif command == "bench":
    module.check_names(positional)
  elif positional:
    raise ValueError(f"vidistill {command}: unexpected arguments {positional}")


def main(argv):
  requests_path, results_path = argv[1:]
  with open(requests_path, encoding="utf-8") as f:
    requests = json.load(f)
  tf_quiet.import_tensorflow()
  modules = {c: importlib.import_module(cli.COMMANDS[c].module)
             for c in {r["command"] for r in requests}}
  import_time_flags = set(flags.FLAGS)  # Defined on import, by absl and libraries: kept.
  state = {"dry_runs_done": set()}

  def fake_app_run(main_fn, argv, flags_parser):  # absl.app.run, without running main_fn.
    positional = flags_parser(argv)
    _check_positional(state["command"], state["module"], positional[1:])
    if state["dry_run"]:
      key = (state["command"], repr(flags.FLAGS["config"].value))
      if key not in state["dry_runs_done"]:
        flags.FLAGS.dry_run = True
        try:
          main_fn(positional)
        except vocab.VocabularyError as e:  # Needs the world an earlier command writes.
          if "does not exist" not in str(e):
            raise
          print(f"dry run skipped: {e}")
        state["dry_runs_done"].add(key)

  app.run = fake_app_run
  results = []
  for request in requests:
    command = request["command"]
    if command != state.get("command"):  # Another command: its own flags, defined by its run().
      for name in set(flags.FLAGS) - import_time_flags:
        delattr(flags.FLAGS, name)
    state.update(command=command, module=modules[command], dry_run=request["dry_run"])
    if flags.FLAGS.is_parsed():  # A fresh parse, as `vidistill data` does for a second run.
      for name in [n for n in flags.FLAGS if n.startswith("config.")]:
        delattr(flags.FLAGS, name)
      flags.FLAGS.unparse_flags()
    # ml_collections reads the `--config.x` overrides from sys.argv, as in `vidistill COMMAND ...`.
    sys.argv = ["vidistill", command] + request["argv"]
    out, start = io.StringIO(), time.time()
    try:
      with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        state["module"].run(f"vidistill {command}", request["argv"])
      results.append({"ok": True, "error": "", "output": out.getvalue()[-1000:]})
    except SystemExit as e:  # Parse errors: one line on stderr and exit 2.
      results.append({"ok": e.code in (0, None),
                      "error": f"exit {e.code}: {out.getvalue()[-2000:]}"})
    except Exception:  # pylint: disable=broad-except
      results.append({"ok": False,
                      "error": out.getvalue()[-1000:] + traceback.format_exc()[-2000:]})
    results[-1]["seconds"] = round(time.time() - start, 1)
  with open(results_path, "w", encoding="utf-8") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main(sys.argv)
