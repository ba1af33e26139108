"""Tests for `vidistill eval` (vidistill/eval/command.py), the suite configs (configs/eval/*.py) and
the report (vidistill/eval/report.py): in-process, with fake models injected through the seam
`evaluators.common.load_model`, on clips laid out as `vidistill data synth` writes them."""
import json
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position

from vidistill.eval import command
from vidistill.eval import report
from vidistill.eval import evaluators
from vidistill.eval.evaluators import common

SUITES = {"retrieval": "dual_encoder", "captioning": "vlm", "qa": "vlm",
          "zero_shot": "dual_encoder"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("world"))
  return fakes.write_synthetic_layout(os.path.join(root, "synthetic"))["synthetic"]


def _model(suite):
  return fakes.FakeEmbedder() if SUITES[suite] == "dual_encoder" else fakes.FakeVLM()


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("variant", ["tiny", "default", "paper"])
def test_every_suite_variant_resolves(suite, variant):
  config = fakes.load_suite_config(suite, f"{variant},data=/data/x")
  assert config.suite == suite and config.model.kind == SUITES[suite]
  built = evaluators.from_config(config, check_files=False)
  assert built and all(e.options.annotations.startswith("/data/x/") for e in built)
  kinds = {e.kind for e in built}
  assert kinds == {suite}
  for e in built:
    assert isinstance(_model(suite), e.model_protocol)
  # Frames and resolution are the checkpoint's: the config leaves them unset.
  raw = fakes.load_suite_config(suite, f"{variant},data=/data/x", like_a_checkpoint=False)
  assert raw.num_frames == 0 and raw.resolution == 0


def test_suite_arguments_are_checked():
  with pytest.raises(ValueError, match="unknown variant 'huge' for configs/eval/qa.py"):
    fakes.load_suite_config("qa", "huge")
  config = fakes.load_suite_config("retrieval", "tiny,frames=6,res=40,batch=2,max=3")
  assert (config.num_frames, config.resolution, config.batch_size) == (6, 40, 2)
  assert all(entry.max_examples == 3 for entry in config.evals.values())
  assert config.data == "/tmp/vidistill_world"


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_tiny_suites_run_on_the_synthetic_layout(world, suite, tmp_path, capsys):
  config = fakes.load_suite_config(suite, f"tiny,data={world}")
  doc = command.run_suite(config, _model(suite), str(tmp_path), checkpoint="/ckpt/fake")
  assert doc["complete"] and doc["suite"] == suite
  # The library call prints nothing (the pipeline's workers call it); the command prints the table.
  assert capsys.readouterr().out == ""
  for name, metrics in doc["results"].items():
    headline = {"retrieval": "t2v/R@1", "captioning": "BLEU-4", "qa": "accuracy",
                "zero_shot": "top1"}[suite]
    assert metrics[headline] == pytest.approx(100.0), name
  saved = json.load(open(tmp_path / "results.json", encoding="utf-8"))
  assert saved == doc


def _run_command(argv, monkeypatch, model=None):
  if model is not None:
    def load(config, checkpoint):  # as the real loader does: frames / resolution = the model's
      del checkpoint
      fakes.fill_like_a_checkpoint(config)
      return model
    monkeypatch.setattr(common, "load_model", load)
  # ml_collections reads `--config.x=` overrides from sys.argv, which the CLI passes through.
  monkeypatch.setattr(sys, "argv", ["vidistill", "eval", *argv])
  with pytest.raises(SystemExit) as exit_info:
    command.run("vidistill eval", argv)
  return exit_info.value.code


def test_command_end_to_end(world, tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path / "out")
  config = os.path.join(fakes.REPO, "configs", "eval", "retrieval.py")
  code = _run_command(["--config", f"{config}:tiny,data={world}", "--config.batch_size=3",
                       "--checkpoint", "/ckpt/dual@100", "--workdir", workdir,
                       "--only", "synthetic_test"], monkeypatch, fakes.FakeEmbedder())
  assert code in (None, 0)
  doc = json.load(open(os.path.join(workdir, "results.json"), encoding="utf-8"))
  assert doc["checkpoint"] == "/ckpt/dual@100" and doc["complete"] and doc["suite"] == "retrieval"
  assert list(doc["results"]) == ["synthetic_test"]
  metrics = doc["results"]["synthetic_test"]
  assert metrics["t2v/R@1"] == 100.0 and metrics["num_texts"] == 24
  assert isinstance(metrics["num_videos"], int)
  assert doc["config"]["batch_size"] == 3 and doc["config"]["data"] == world
  assert doc["evaluators"]["synthetic_test"]["kind"] == "retrieval"
  md = open(os.path.join(workdir, "results.md"), encoding="utf-8").read()
  assert "## synthetic_test (retrieval" in md and "| t2v/R@1 | 100.00 |" in md
  assert "| num_texts | 24 |" in md
  out = capsys.readouterr().out
  assert "synthetic_test  t2v/R@1" in out and "100.00" in out


def test_command_errors_are_one_line(world, tmp_path, monkeypatch, capsys):
  config = os.path.join(fakes.REPO, "configs", "eval", "qa.py")
  base = ["--config", f"{config}:tiny,data={world}", "--workdir", str(tmp_path)]
  assert _run_command(base, monkeypatch) == 2
  assert "--checkpoint is required" in capsys.readouterr().err
  assert _run_command(base + ["--checkpoint", "/ckpt/vlm"], monkeypatch) == 2
  assert "'/ckpt/vlm' is not a workdir written by `vidistill train`" in capsys.readouterr().err
  missing = ["--config", f"{config}:tiny,data={tmp_path}/nowhere", "--workdir", str(tmp_path),
             "--checkpoint", "/ckpt/vlm"]
  assert _run_command(missing, monkeypatch, fakes.FakeVLM()) == 2
  err = capsys.readouterr().err
  assert f"no such file '{tmp_path}/nowhere/annotations/qa_nextqa.csv'" in err
  assert _run_command(base + ["--checkpoint", "c", "--only", "nope"], monkeypatch,
                      fakes.FakeVLM()) == 2
  assert "--only names ['nope']" in capsys.readouterr().err
  # The wrong model for the suite: a dual encoder given to the QA suite.
  assert _run_command(base + ["--checkpoint", "c"], monkeypatch, fakes.FakeEmbedder()) == 2
  assert "needs a VideoTextGenerator" in capsys.readouterr().err


def test_report_numbers_tables_and_partial_runs(tmp_path):
  import ml_collections  # pylint: disable=g-import-not-at-top
  results = {"a": {"R@1": np.float32(12.5), "count": np.int64(7), "bad": math.nan},
             "bb": {"accuracy": 50}}
  doc = report.document(suite="s", checkpoint="ck", config=ml_collections.ConfigDict({"x": (1,)}),
                        results=results, evaluators={"a": {"kind": "retrieval", "seconds": 1.25}},
                        started="t0", complete=False)
  assert doc["results"] == {"a": {"R@1": 12.5, "count": 7, "bad": None}, "bb": {"accuracy": 50}}
  assert doc["config"] == {"x": [1]} and doc["finished"] is None
  json_path, md_path = report.write(str(tmp_path), doc)
  assert json.load(open(json_path, encoding="utf-8")) == doc
  md = open(md_path, encoding="utf-8").read()
  assert "incomplete" in md and "| R@1 | 12.50 |" in md and "| bad | n/a |" in md
  assert "| count | 7 |" in md and "## a (retrieval, 1.2 s)" in md
  table = report.console_table(doc).splitlines()
  assert table[0].split() == ["evaluator", "metric", "value"]
  assert table[2].split() == ["a", "R@1", "12.50"] and table[3].split() == ["count", "7"]
  with pytest.raises(TypeError, match="'x' is not a number"):
    report.document(suite="s", checkpoint="c", config=ml_collections.ConfigDict(),
                    results={"a": {"m": "x"}}, evaluators={}, started="t", complete=True)


@pytest.mark.slow
def test_tiny_configs_fit_a_world_written_by_data_synth(tmp_path):
  """The tiny suites on a real `vidistill data synth` world: an oracle that recognises each test
  clip by its decoded frames and each gold caption by its text retrieves perfectly, and every
  QA question reaches the model."""
  import hashlib  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  from vidistill.data import video_io  # pylint: disable=g-import-not-at-top
  from vidistill.data.synthetic import world as world_lib  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "synthetic_config", os.path.join(fakes.REPO, "configs", "data", "synthetic.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  root = str(tmp_path / "world")
  world_lib.synth(module.get_config("tiny"), root)
  config = fakes.load_suite_config("retrieval", f"tiny,data={root}")
  truth = world_lib.load_truth(root, "test")

  def digest(frames):
    return hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest()

  clip_of_frames = {digest(video_io.read_video(
      os.path.join(root, "videos", "test", f"{r['id']}.mp4"), config.num_frames,
      resolution=config.resolution)): r["id"] for r in truth}
  clip_of_caption = {c: r["id"] for r in truth for c in r["gold_captions"]}
  assert len(clip_of_frames) == len(truth)  # Every clip decodes to different frames.

  class Oracle:
    def embed_videos(self, frames):
      return np.stack([fakes.unit_vector(clip_of_frames[digest(v)]) for v in np.asarray(frames)])

    def embed_texts(self, texts):
      return np.stack([fakes.unit_vector(clip_of_caption[t]) + 0.01 * fakes.unit_vector(t)
                       for t in texts])

  doc = command.run_suite(config, Oracle(), str(tmp_path / "retrieval"), checkpoint="oracle")
  for name in ("synthetic_test", "synthetic_test_first"):
    metrics = doc["results"][name]
    assert metrics["num_videos"] == len(truth)
    assert metrics["t2v/R@1"] == 100.0 and metrics["v2t/R@1"] == 100.0, name
  qa_config = fakes.load_suite_config("qa", f"tiny,data={root}")
  doc = command.run_suite(qa_config, fakes.FakeVLM(), str(tmp_path / "qa"), checkpoint="fake")
  questions = sum(len(r["questions"]) for r in world_lib.load_truth(root, "qa"))
  assert doc["results"]["synthetic_nextqa_mc"]["num_questions"] == questions
  assert doc["results"]["synthetic_msrvtt_qa"]["num_questions"] == questions
