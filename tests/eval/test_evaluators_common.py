"""Tests for vidistill/eval/evaluators/common.py and inputs.py: options, construction, batching,
decoding once per video, failures, the jit cache, sharding over a mesh, progress."""
import os
import sys

import jax
import ml_collections
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import evaluator_fakes as fakes  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluator_fakes import world  # pylint: disable=unused-import  (fixture)

from vidistill.config_args import ConfigError
from vidistill.data import video_io
from vidistill.eval import evaluators
from vidistill.eval.evaluators import common, inputs
from vidistill.eval.evaluators import retrieval


SETTINGS = common.Settings(num_frames=4, resolution=32, batch_size=3, num_workers=2, buffer=4,
                           progress_every_s=0.0)


def _msrvtt(paths, root, **extra):
  return dict(reader="msrvtt", annotations=paths["msrvtt"],
              video_root=os.path.join(root, "msrvtt", "videos", "all"), **extra)


def _retrieval(paths, root, settings=SETTINGS, **extra):
  options = common.parse_options(retrieval.RetrievalOptions, _msrvtt(paths, root, **extra), "e")
  return retrieval.RetrievalEvaluator("e", options, settings)


def _suite(entries, **top):
  config = ml_collections.ConfigDict(dict(
      suite="test", num_frames=4, resolution=32, batch_size=4, pad_batches=True,
      shard_batches=False, mesh=dict(data=-1, fsdp=1, model=1),
      prefetch=dict(num_workers=2, buffer=4), video_extensions=(".mp4",), progress_every_s=30.0))
  config.update(top)
  config.evals = ml_collections.ConfigDict(entries, sort_keys=False)
  return config


def test_parse_options_names_the_bad_key():
  entry = dict(reader="msrvtt", annotations="a.json", video_root="v")
  with pytest.raises(ConfigError, match=r"config.evals.x: unknown option\(s\) \['captionz'\]"):
    common.parse_options(retrieval.RetrievalOptions, {**entry, "captionz": "all"},
                         "config.evals.x")
  with pytest.raises(ConfigError, match=r"missing option\(s\) \['video_root'\]"):
    common.parse_options(retrieval.RetrievalOptions, {"reader": "msrvtt", "annotations": "a"},
                         "config.evals.x")
  with pytest.raises(ConfigError, match=r"config.evals.x.chunk='big' should be a int"):
    common.parse_options(retrieval.RetrievalOptions, {**entry, "chunk": "big"}, "config.evals.x")
  with pytest.raises(ConfigError, match="on_error='ignore'"):
    common.parse_options(retrieval.RetrievalOptions, {**entry, "on_error": "ignore"}, "x")
  options = common.parse_options(retrieval.RetrievalOptions,
                                 ml_collections.ConfigDict({**entry, "kind": "retrieval"}), "x")
  assert options.captions == "all" and options.reader_options == {}


def test_from_config_checks_every_entry_before_running(world):
  paths, root = world
  good = dict(kind="retrieval", **_msrvtt(paths, root))
  with pytest.raises(ConfigError, match=r"config.evals.b.kind='retreival' is not an evaluator"):
    evaluators.from_config(_suite({"a": good, "b": {**good, "kind": "retreival"}}))
  with pytest.raises(ConfigError, match=r"config.evals.a.reader='msrvt' is not an annotation"):
    evaluators.from_config(_suite({"a": {**good, "reader": "msrvt"}}))
  missing = os.path.join(root, "nope.json")
  with pytest.raises(common.EvalDataError, match=f"config.evals.a.annotations: no such file "
                     f"'{missing}'"):
    evaluators.from_config(_suite({"a": {**good, "annotations": missing}}))
  with pytest.raises(common.EvalDataError, match="video_root: no such folder"):
    evaluators.from_config(_suite({"a": {**good, "video_root": missing}}))
  with pytest.raises(ConfigError, match=r"--only names \['c'\]"):
    evaluators.from_config(_suite({"a": good}), only=["c"])
  with pytest.raises(ConfigError, match="config.evals is empty"):
    evaluators.from_config(_suite({}))
  built = evaluators.from_config(_suite({"z": good, "a": {**good, "captions": "first"}}))
  assert [e.name for e in built] == ["z", "a"]  # The entries' order, not sorted.
  assert [e.name for e in evaluators.from_config(_suite({"z": good, "a": good}), only=["a"])] == ["a"]


def test_wrong_model_kind_is_named(world):
  paths, root = world
  with pytest.raises(ConfigError, match=r"'e' \(kind 'retrieval'\) needs a VideoTextEmbedder"):
    list(_retrieval(paths, root).run(fakes.FakeVLM()))


def test_load_model_needs_a_train_workdir(tmp_path):
  config = ml_collections.ConfigDict(dict(model=dict(kind="vlm")))
  with pytest.raises(FileNotFoundError, match="config.json.*not a workdir written by"):
    common.load_model(config, str(tmp_path))


def test_cached_jit_shares_one_function_per_fn_and_options():
  def double(x):
    return 2 * x
  assert common.cached_jit(double) is common.cached_jit(double)
  assert common.cached_jit(double) is not common.cached_jit(double, donate_argnums=(0,))
  assert float(common.cached_jit(double)(np.float32(2.0))) == 4.0


def test_normalized_embeddings_checks_shape_and_normalises():
  x = np.array([[3.0, 4.0], [0.0, 0.0]])
  out = common.normalized_embeddings(x, "m", 2)
  np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
  with pytest.raises(common.EvalDataError, match=r"shape \(2, 2\); expected \[3, D\]"):
    common.normalized_embeddings(x, "m", 3)


def test_progress_reports_batches_rate_and_eta():
  now = [0.0]
  progress = inputs.BatchLog("e videos", total_items=10, batch_size=4, every_s=5.0,
                             clock=lambda: now[0])
  now[0] = 2.0
  progress.update(4)     # 2 s since the start: no line yet.
  now[0] = 8.0
  progress.update(4)     # 8 items in 8 s: 1/s, 2 left.
  progress.skip()
  now[0] = 9.0
  progress.finish()
  assert progress.lines == ["e videos: batch 2/3 (8/10), 1.0/s, ETA 2s",
                            "e videos: batch 2/3 (9/10), 1.0/s, ETA 1s"]


def test_videos_shared_by_records_are_decoded_once(world, monkeypatch):
  paths, root = world
  calls = []
  real = video_io.read_video

  def counting(path, *args, **kwargs):
    calls.append(path)
    return real(path, *args, **kwargs)

  monkeypatch.setattr(video_io, "read_video", counting)
  options = common.parse_options(common.DataOptions, dict(
      reader="nextqa", annotations=paths["nextqa"], video_root=os.path.join(root, "NExTVideo")),
                                 "e")
  records = inputs.load_records(options, "e")
  assert len(records) == 16
  got = dict(inputs.iter_frames(records, options.video_root, SETTINGS))
  assert sorted(got) == list(range(16)) and len(calls) == 8 == len(set(calls))
  for index, frames in got.items():
    assert frames.shape == (4, 32, 32, 3)
    assert fakes.colour_of(frames) == fakes.COLOURS[int(records[index].video_id) - 1000]


def test_batches_are_padded_to_one_shape(world):
  paths, root = world
  shapes = []

  def call(frames, indices):
    shapes.append((frames.shape, list(indices)))
    return [fakes.colour_of(f) for f in frames]

  options = common.parse_options(common.DataOptions, _msrvtt(paths, root), "e")
  records = inputs.load_records(options, "e")
  out, failed = inputs.map_video_batches(records, call, options=options, settings=SETTINGS,
                                         batch_size=3, label="e")
  assert failed == [] and [s for s, _ in shapes] == [(3, 4, 32, 32, 3)] * 3
  assert shapes[-1][1] == [6, 7, 7]  # The last batch repeats its last record.
  assert out == {i: c for i, c in enumerate(fakes.COLOURS)}


@pytest.fixture()
def broken_world(world, tmp_path):
  """The MSR-VTT world plus video8 (missing file) and video9 (a corrupt file)."""
  paths, root = world
  doc = fakes.msrvtt_videodatainfo(fakes.COLOURS + ("red", "green"))
  ann = fakes.write_json(str(tmp_path / "MSRVTT_data.json"), doc)
  videos = tmp_path / "videos"
  videos.mkdir()
  for i in range(8):
    os.symlink(os.path.join(root, "msrvtt", "videos", "all", f"video{i}.mp4"),
               videos / f"video{i}.mp4")
  (videos / "video9.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
  return dict(msrvtt=ann), str(videos)


def test_a_failed_video_stops_the_run_naming_the_record(broken_world):
  paths, videos = broken_world
  options = common.parse_options(retrieval.RetrievalOptions, dict(
      reader="msrvtt", annotations=paths["msrvtt"], video_root=videos), "e")
  evaluator = retrieval.RetrievalEvaluator("e", options, SETTINGS)
  with pytest.raises(common.EvalDataError, match=r"record 'video(8|9)' cannot be used.*"
                     "on_error='skip'"):
    dict(evaluator.run(fakes.FakeEmbedder()))


def test_skipped_videos_are_left_out_and_counted(broken_world):
  paths, videos = broken_world
  options = common.parse_options(retrieval.RetrievalOptions, dict(
      reader="msrvtt", annotations=paths["msrvtt"], video_root=videos, on_error="skip"), "e")
  metrics = dict(retrieval.RetrievalEvaluator("e", options, SETTINGS).run(fakes.FakeEmbedder()))
  assert metrics["num_failed"] == 2 and metrics["num_videos"] == 8
  assert metrics["num_texts"] == 24 and metrics["t2v/R@1"] == 100.0


def test_batches_are_sharded_over_the_mesh(world):
  paths, root = world
  assert jax.device_count() == 8  # tests/conftest.py: 8 fake CPU devices.
  config = _suite({}, batch_size=8, shard_batches=True)
  settings = common.settings_from_config(config)
  sharded, plain = fakes.FakeEmbedder(), fakes.FakeEmbedder()
  got = dict(_retrieval(paths, root, settings).run(sharded))
  want = dict(_retrieval(paths, root, SETTINGS).run(plain))
  assert got == want
  assert sharded.video_batches == [("ArrayImpl", (8, 4, 32, 32, 3), 8)]
  assert plain.video_batches[0] == ("ndarray", (3, 4, 32, 32, 3), 0)
  with pytest.raises(ConfigError, match=r"config.batch_size=6 does not split over the 8 devices"):
    common.settings_from_config(_suite({}, batch_size=6, shard_batches=True))
  with pytest.raises(ConfigError, match="pad_batches=False"):
    common.settings_from_config(_suite({}, batch_size=8, shard_batches=True, pad_batches=False))


def test_reader_errors_and_options_are_reported(world, tmp_path):
  paths, root = world
  bad = tmp_path / "MSRVTT_data.json"
  bad.write_text('{"videos": [], "sentences": [}')
  options = common.parse_options(common.DataOptions, dict(
      reader="msrvtt", annotations=str(bad), video_root=root), "config.evals.e")
  with pytest.raises(common.EvalDataError, match=r"config.evals.e: .*MSRVTT_data.json:1: invalid"):
    inputs.load_records(options, "config.evals.e")
  options = common.parse_options(common.DataOptions, dict(
      reader="msrvtt", annotations=paths["msrvtt"], video_root=root,
      reader_options={"splitt": "test"}), "config.evals.e")
  with pytest.raises(ConfigError, match=r"reader_options=\{'splitt': 'test'\} do not fit"):
    inputs.load_records(options, "config.evals.e")
  options = common.parse_options(common.DataOptions, dict(
      reader="msrvtt", annotations=paths["msrvtt"], video_root=root,
      reader_options={"split": "train"}), "config.evals.e")
  with pytest.raises(common.EvalDataError, match="holds no records"):
    inputs.load_records(options, "config.evals.e")
