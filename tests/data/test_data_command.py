"""`vidistill data synth | inspect | convert`, run in-process on the tiny world (and once as a real
subprocess for --help)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from vidistill.data import command
from vidistill.data import shards
from vidistill.data.synthetic import world

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
CONFIG = os.path.join(REPO, "configs", "data", "synthetic.py")
VIDISTILL = os.path.join(os.path.dirname(sys.executable), "vidistill")


def run(*argv):
  """Runs `vidistill data argv...` in this process, as `vidistill` would; returns the exit code.

  sys.argv is set too: ml_collections finds `--config.x=` overrides there.
  """
  saved = sys.argv
  sys.argv = ["vidistill", "data", *argv]
  try:
    with pytest.raises(SystemExit) as exit_info:
      command.run("vidistill data", list(argv))
  finally:
    sys.argv = saved
  return exit_info.value.code or 0


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("cli") / "world")
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", path, "--num_workers", "1") == 0
  return path


def test_synth_writes_a_complete_world_and_keeps_it(world_dir):
  assert world.is_complete(world_dir)
  assert world.load_world(world_dir)["num_frames"] == 8
  stamp = os.path.getmtime(os.path.join(world_dir, "world.json"))
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", world_dir) == 0
  assert os.path.getmtime(os.path.join(world_dir, "world.json")) == stamp  # Kept, not rewritten.


def test_synth_overwrite_and_config_overrides(world_dir, tmp_path):
  path = str(tmp_path / "small")
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", path, "--num_workers", "1",
             "--config.splits.image_text=0", "--config.splits.labeled=0",
             "--config.splits.narratives=0", "--config.splits.qa=0",
             "--config.splits.test=0", "--config.splits.pool=2", "--config.num_shards.pool=1") == 0
  assert world.load_world(path)["splits"]["pool"]["size"] == 2
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", path, "--num_workers", "1",
             "--config.splits.image_text=0", "--config.splits.labeled=0",
             "--config.splits.narratives=0", "--config.splits.qa=0", "--config.splits.test=0",
             "--config.splits.pool=3", "--config.num_shards.pool=1", "--overwrite") == 0
  assert len(world.load_truth(path, "pool")) == 3


def test_bad_config_values_are_errors_naming_the_key(capsys, tmp_path):
  # In the config argument: get_config fails while absl parses --config (absl's exit code 1).
  assert run("synth", "--config", f"{CONFIG}:tiny,res=20", "--workdir", str(tmp_path)) != 0
  assert "config.resolution=20 is too small for the shapes" in capsys.readouterr().err
  # In an override: checked by synth, a one-line usage error.
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", str(tmp_path),
             "--config.resolution=20") == 2
  assert "config.resolution=20 is too small for the shapes" in capsys.readouterr().err
  assert run("synth", "--config", f"{CONFIG}:tiny", "--workdir", str(tmp_path),
             "--config.actions=('move_left','fly')") == 2
  assert "'fly'" in capsys.readouterr().err
  assert run("synth", "--config", f"{CONFIG}:tiny") == 2
  assert "--workdir is required" in capsys.readouterr().err


def test_inspect_world_shards_and_video(world_dir, capsys):
  assert run("inspect", world_dir) == 0
  out = capsys.readouterr().out
  truth = world.load_truth(world_dir, "test")
  assert "chance levels" in out and "retrieval_r1" in out
  assert "pool" in out and " 10 " in out  # tiny: 10 pool clips.
  for record in truth[:3]:
    assert record["id"] in out and record["gold_caption"] in out and record["alt_text"] in out

  assert run("inspect", os.path.join(world_dir, "shards", "pool-*.tfrecord")) == 0
  out = capsys.readouterr().out
  assert "10 examples" in out and "alt_text" in out and "uint8 [8, 32, 32, 3]" in out

  assert run("inspect", os.path.join(world_dir, "videos", "test", "video0.mp4")) == 0
  out = capsys.readouterr().out
  assert "num_frames" in out and "h264" in out


def test_convert_reads_the_world_annotations_into_shards(world_dir, tmp_path, capsys):
  output = str(tmp_path / "out" / "msrvtt_test")
  assert run("convert", "--format", "msrvtt",
             "--annotations", os.path.join(world_dir, "annotations", "test_msrvtt.json"),
             "--videos", os.path.join(world_dir, "videos", "test"), "--output", output,
             "--num_frames", "4", "--resolution", "32", "--num_shards", "2") == 0
  assert "converted 6 of 6" in capsys.readouterr().out
  examples = {e["id"]: e for e in shards.read_shards(output)}
  for record in world.load_truth(world_dir, "test"):
    example = examples[record["id"]]
    assert example["frames"].shape == (4, 32, 32, 3)
    assert example["captions"] == record["gold_captions"]
    # Frames 0, 2, 4, 6 of the 8 (uniform sampling), through h264.
    want = world.regenerate_frames(record)[[0, 2, 4, 6]].astype(float)
    assert np.abs(example["frames"] - want).mean() < 8


def test_convert_qa_keeps_questions_and_choices(world_dir, tmp_path):
  output = str(tmp_path / "qa")
  assert run("convert", "--format", "nextqa",
             "--annotations", os.path.join(world_dir, "annotations", "qa_nextqa.csv"),
             "--videos", os.path.join(world_dir, "videos"), "--output", output) == 0
  questions = [q for r in world.load_truth(world_dir, "qa") for q in r["questions"]]
  examples = list(shards.read_shards(output))
  assert sorted(e["question"] for e in examples) == sorted(q["question"] for q in questions)
  for e in examples:
    assert e["candidates"][e["answer_index"]] == e["answer"]


def test_command_line_mistakes(world_dir, capsys):
  assert run() == 2
  assert "give a sub-command" in capsys.readouterr().err
  assert run("frobnicate") == 2
  assert "unknown sub-command 'frobnicate'" in capsys.readouterr().err
  assert run("convert", "--format", "nope", "--annotations", "x", "--videos", world_dir,
             "--output", "y") == 2
  assert "known: " in capsys.readouterr().err
  assert run("convert", "--format", "msrvtt") == 2
  assert "--annotations" in capsys.readouterr().err
  assert run("inspect", os.path.join(world_dir, "nothing-*.tfrecord")) == 2
  assert "nothing matches" in capsys.readouterr().err
  assert run("inspect", world_dir, "extra") == 2


def test_help_explains_each_subcommand_with_examples():
  result = subprocess.run([VIDISTILL, "data", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)
  assert result.returncode == 0
  for text in ("synth", "inspect", "convert", "--num_workers", "--overwrite",
               "vidistill data synth --config configs/data/synthetic.py:tiny --workdir /tmp/world",
               "vidistill data inspect /tmp/world", "vidistill data convert --format msrvtt"):
    assert text in result.stdout, text
