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
import types

import pytest

from vidistill import flags_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
_LOG_LINE = re.compile(r"^[IWEF]\d{4} ")  # absl's log prefix: I1206 07:45:17.366362 ...


def vidistill(*args, timeout=300, cwd=None):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  # One CPU device, as a user's machine has (conftest gives this process 8 fake ones).
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8",
                                                      "")
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



def test_compile_topology_without_libtpu_says_how_to_get_it(tmp_path):
  # The real CLI, with libtpu made unfindable (as on a host without the `tpu` extra).
  hide = ("import importlib.util, sys; real = importlib.util.find_spec; "
          "importlib.util.find_spec = lambda n, *a: None if n == 'libtpu' else real(n, *a); "
          "from vidistill import cli; cli.main(['vidistill'] + sys.argv[1:])")
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run(
      [sys.executable, "-c", hide, "train", "--config",
       f"{CONFIGS}/train/visual_adaptation.py:tiny", "--compile_topology=v5e:2x2",
       "--workdir", str(tmp_path / "w")], capture_output=True, text=True, timeout=300, env=env)
  assert_user_error(result, "--compile_topology=v5e:2x2 needs libtpu", "pip install -e '.[tpu]'")
  assert snapshot(tmp_path / "w") is None

# ------------------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  path = tmp_path_factory.mktemp("user_errors") / "world"
  result = vidistill("data", "synth", "--config", f"{CONFIGS}/data/synthetic.py:tiny",
                     "--workdir", path)
  assert result.returncode == 0, result.stderr[-3000:]
  return path


def _stage(name, world, extra=""):
  return ["--config", f"{CONFIGS}/train/{name}.py:tiny,world={world}{extra}"]


@pytest.mark.slow
@pytest.mark.parametrize("extra, message", [
    (",steps=-5", "config.total_steps=-5 must be positive"),
    (",init=/nonexistent/stage0", "config.init.checkpoint (the `init=` argument): no complete "
     "checkpoint under '/nonexistent/stage0'"),
])
def test_train_refuses_before_writing_anything(world, tmp_path, extra, message):
  workdir = tmp_path / "run"
  result = vidistill("train", *_stage("visual_adaptation", world, extra), "--workdir", workdir)
  assert_user_error(result, message)
  assert not workdir.exists()


@pytest.mark.slow
def test_train_without_a_world_names_the_argument(tmp_path):
  workdir = tmp_path / "run"
  result = vidistill("train", "--config", f"{CONFIGS}/train/image_pretrain.py:tiny,"
                     f"world={tmp_path}/no_world", "--workdir", workdir)
  assert_user_error(result, f"data.world='{tmp_path}/no_world' is not a synthetic world")
  assert not workdir.exists()


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
  """A tiny image_pretrain workdir (2 steps), trained once for the module."""
  workdir = tmp_path_factory.mktemp("user_errors") / "stage0"
  result = vidistill("train", *_stage("image_pretrain", world, ",steps=2"), "--workdir", workdir)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


@pytest.mark.slow
def test_rerun_with_another_model_size_is_refused_and_the_workdir_still_evaluates(
    world, trained, tmp_path):
  before = snapshot(trained)
  result = vidistill("train", "--config", f"{CONFIGS}/train/image_pretrain.py:quick,world={world},"
                     "steps=2", "--workdir", trained)
  assert_user_error(result, "holds a run trained with another config",
                    "model.vit.variant: 'mu/8' there, 'nu/16' now", "--restart")
  assert snapshot(trained) == before
  out = tmp_path / "eval"
  evaluated = vidistill("eval", "--config", f"{CONFIGS}/eval/captioning.py:tiny,data={world},max=2",
                        "--checkpoint", trained, "--workdir", out)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert (out / "results.json").exists()


@pytest.mark.slow
def test_init_from_another_model_size_is_refused_before_writing(world, trained, tmp_path):
  workdir = tmp_path / "stage1"
  result = vidistill("train", "--config", f"{CONFIGS}/train/visual_adaptation.py:quick,"
                     f"world={world},init={trained}", "--workdir", workdir)
  assert_user_error(result, "config.init.checkpoint", "shapes differ", "another model size")
  assert not workdir.exists()


# -------------------------------------------------------------------------------------- eval


@pytest.mark.slow
@pytest.mark.parametrize("suite, message", [
    ("retrieval.py:tiny", "the 'retrieval' suite evaluates a 'dual_encoder' model but"),
    ("captioning.py:tiny,res=48", "resolution 48 px, but the checkpoint was trained at 32 px"),
    ("captioning.py:tiny,frames=20", "20 frames, but the checkpoint's model reads at most 16"),
])
def test_eval_with_a_checkpoint_that_does_not_fit_the_suite(world, trained, tmp_path, suite,
                                                             message):
  out = tmp_path / "eval"
  before = snapshot(trained)
  result = vidistill("eval", "--config", f"{CONFIGS}/eval/{suite},data={world}", "--checkpoint",
                     trained, "--workdir", out)
  assert_user_error(result, message)
  assert not out.exists() and snapshot(trained) == before


@pytest.mark.slow
def test_eval_with_a_config_json_that_does_not_fit_the_checkpoint(world, trained, tmp_path):
  import shutil
  copy = tmp_path / "copy"
  shutil.copytree(trained, copy)
  config = (copy / "config.json").read_text()
  (copy / "config.json").write_text(config.replace('"mu/8"', '"nu/16"'))
  out = tmp_path / "eval"
  result = vidistill("eval", "--config", f"{CONFIGS}/eval/captioning.py:tiny,data={world}",
                     "--checkpoint", copy, "--workdir", out)
  assert_user_error(result, "does not fit the model its config.json describes", "shapes differ")
  assert not out.exists()


# ----------------------------------------------------------------------------------- caption


def _caption(trained, manifest, out, *extra):
  return vidistill("caption", "--config", f"{CONFIGS}/caption/pseudo_caption.py:tiny", *extra,
                   "--checkpoint", trained, "--input", manifest, "--output", out)


@pytest.mark.slow
def test_caption_at_another_resolution_than_the_checkpoint_writes_no_plan(world, trained,
                                                                          tmp_path):
  out = tmp_path / "captions"
  result = _caption(trained, world / "annotations" / "pool_internvid.jsonl", out,
                    "--config.resolution=48", "--video_root", world / "videos" / "pool")
  assert_user_error(result, "resolution 48 px, but the checkpoint was trained at 32 px")
  assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name, content, where", [
    ("manifest.csv", b"id,path\nclip\xe9,a.mp4\n", ":2: not UTF-8 text: byte 0xe9 at byte offset 12"),
    ("manifest.jsonl", b'{"id": "a", "path": "a.mp4"}\n{"id": "caf\xe9", "path": "b.mp4"}\n',
     ":2: not UTF-8 text: byte 0xe9 at byte offset 40"),
])
def test_caption_manifest_that_is_not_utf8_names_line_and_byte(trained, tmp_path, name, content,
                                                               where):
  manifest = tmp_path / name
  manifest.write_bytes(content)
  out = tmp_path / "captions"
  result = _caption(trained, manifest, out)
  assert_user_error(result, f"{manifest}{where}", "save the file as UTF-8")
  assert not out.exists()


# -------------------------------------------------------------------------------- full disk


def _can_mount_tmpfs(tmp_path):
  probe = tmp_path / "probe"
  probe.mkdir()
  return subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {probe}"],
                        capture_output=True).returncode == 0


def _on_a_small_disk(tmp_path, fill_kb, *args):
  """The CLI with `args` (DISK: a 1 MB file system holding `fill_kb` KB already), in a private
  mount namespace."""
  if not _can_mount_tmpfs(tmp_path):
    pytest.skip("needs `unshare -rm` (user + mount namespaces) to make a small file system")
  disk = tmp_path / "disk"
  disk.mkdir()
  command = " ".join([sys.executable, "-m", "vidistill.cli"] +
                     [str(a).replace("DISK", str(disk)) for a in args])
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env["XLA_FLAGS"] = ""
  fill = f"dd if=/dev/zero of={disk}/filler bs=1k count={fill_kb} 2>/dev/null && " if fill_kb else ""
  return subprocess.run(["unshare", "-rm", "sh", "-c",
                         f"mount -t tmpfs -o size=1m tmpfs {disk} && {fill}exec {command}"],
                        capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_and_exit_3(world, tmp_path):
  # The first checkpoint (~1.5 MB) cannot fit.
  result = _on_a_small_disk(tmp_path, 0, "train", "--config",
                            f"{CONFIGS}/train/image_pretrain.py:tiny,world={world},steps=2",
                            "--workdir", "DISK/run")
  assert_user_error(result, "no space left on the device", "rerun the same command", code=3,
                    max_lines=1)


@pytest.mark.slow
def test_a_full_disk_during_a_caption_write_is_one_line_and_exit_3(world, trained, tmp_path):
  result = _on_a_small_disk(
      tmp_path, 990, "caption", "--config", f"{CONFIGS}/caption/pseudo_caption.py:tiny",
      "--checkpoint", trained, "--input", world / "annotations" / "pool_internvid.jsonl",
      "--video_root", world / "videos" / "pool", "--output", "DISK/captions")
  assert_user_error(result, "no space left on the device", "rerun the same command", code=3,
                    max_lines=1)


def test_only_closed_event_loop_noise_is_dropped_from_unraisable_reports():
  seen = []
  hook = flags_lib._without_closed_loop_noise(seen.append)
  report = lambda error: types.SimpleNamespace(exc_value=error)
  hook(report(RuntimeError("Event loop is closed")))
  other = [RuntimeError("Event loop is running"), ValueError("Event loop is closed")]
  for error in other:
    hook(report(error))
  assert [r.exc_value for r in seen] == other
