"""The captioning job in one process, with a deterministic fake captioner over real video files."""
import collections
import json
import os
import shutil

import numpy as np
import pytest

from caption_fakes import FakeCaptioner, colour_of, load_config, make_corpus, write_clip
from caption_fakes import write_simple_manifest
from vidistill.caption import commit
from vidistill.caption import job
from vidistill.data import caption_output
from vidistill.caption.manifest import ManifestError
from vidistill.config_args import ConfigError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpus")
  made = make_corpus(str(root), num_good=10)
  ids = write_simple_manifest(str(root / "manifest.jsonl"), made)
  return {"root": str(root), "manifest": str(root / "manifest.jsonl"), "ids": ids, **made}


def _run(corpus, out, config=None, captioner=None, **kwargs):
  config = config or load_config("tiny")
  return job.run_job(config, captioner or FakeCaptioner(), corpus["manifest"], str(out),
                     video_root=corpus["root"], **kwargs)


def _caption_bytes(out):
  folder = os.path.join(out, "captions")
  return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def test_every_entry_once_captions_match_their_videos(corpus, tmp_path):
  summary = _run(corpus, tmp_path)
  rows = list(caption_output.iter_rows(str(tmp_path)))
  failures = caption_output.read_failures(str(tmp_path))
  # Exactly once: each manifest id is in the captions or in the failures, never both, never twice.
  per_video = collections.Counter(r["video_id"] for r in rows)
  assert set(per_video) | {f["video_id"] for f in failures} == set(corpus["ids"])
  assert set(per_video) == set(corpus["good"]) and all(n == 2 for n in per_video.values())
  assert sorted(f["video_id"] for f in failures) == sorted(corpus["bad"])
  assert {f["video_id"]: f["kind"] for f in failures} == {k: v[1] for k, v in corpus["bad"].items()}
  assert all(f["reason"] and f["where"].startswith(corpus["manifest"]) for f in failures)
  # Each caption describes its own video: the colour it names is nearest to that clip's colour.
  colours = {k: np.array(c) for k, (_, c) in corpus["good"].items()}
  for row in rows:
    got = colour_of(row["caption"])
    nearest = min(colours, key=lambda k: np.abs(colours[k] - got).sum())
    assert nearest == row["video_id"]
  # Rows carry the prompt, the checkpoint and the decode settings; prompts in name order.
  first = [r for r in rows if r["video_id"] == "clip000"]
  assert [(r["prompt_name"], r["prompt"]) for r in first] == [
      ("detailed", "describe the video in detail en:"), ("short", "caption en:")]
  assert all(r["checkpoint"] == "fake-vlm@step100" and r["decode"]["method"] == "greedy"
             for r in rows)
  assert [r["video_id"] for r in rows[::2]] == [i for i in corpus["ids"] if i in corpus["good"]]
  assert (summary.units_total, summary.units_committed, summary.videos_done,
          summary.videos_failed) == (4, 4, 10, 4)
  assert summary.failures_by_kind == {"corrupt": 1, "empty": 1, "missing": 1, "no_video": 1}
  assert summary.videos_per_s > 0 and summary.tokens_per_s > 0
  assert caption_output.status(str(tmp_path)) == {"units_total": 4, "units_done": 4, "entries_total": 14,
                                           "videos_done": 10, "videos_failed": 4, "complete": True}
  with pytest.raises(ValueError, match=r"prompt 'long'; its prompts are \['detailed', 'short'\]"):
    caption_output.read_captions(str(tmp_path), prompt="long")
  saved = json.load(open(tmp_path / "metrics" / "summary-process-00000.json"))
  assert saved["videos_done"] == 10


def test_restart_skips_done_units_and_redoes_the_rest(corpus, tmp_path):
  _run(corpus, tmp_path)
  whole = _caption_bytes(str(tmp_path))
  again = _run(corpus, tmp_path)
  assert (again.units_skipped, again.units_committed, again.videos_skipped) == (4, 0, 14)
  # A crash after unit 1's files were renamed but before its done record; stale temp files too.
  os.unlink(commit.done_path(str(tmp_path), 1))
  os.unlink(commit.captions_path(str(tmp_path), 2, "jsonl"))  # Damaged: the record no longer holds.
  stale = tmp_path / "captions" / "unit-000001.jsonl.tmp.123.abcd"
  stale.write_text("partial")
  captioner = FakeCaptioner()
  redo = _run(corpus, tmp_path, captioner=captioner)
  assert (redo.units_skipped, redo.units_committed) == (2, 2)
  assert redo.videos_done + redo.videos_failed == 8 and not stale.exists()
  assert _caption_bytes(str(tmp_path)) == whole


def test_greedy_output_independent_of_batch_size(corpus, tmp_path):
  outputs = []
  for batch_size, pad in ((1, False), (3, True), (4, False)):
    config = load_config("tiny")
    config.batch_size, config.pad_batches = batch_size, pad
    captioner = FakeCaptioner()
    _run(corpus, tmp_path / f"b{batch_size}", config, captioner)
    sizes = {size for size, _ in captioner.calls}
    assert max(sizes) <= batch_size and (not pad or sizes == {batch_size})
    outputs.append(_caption_bytes(str(tmp_path / f"b{batch_size}")))
  assert outputs[0] == outputs[1] == outputs[2]


def test_sampling_writes_num_samples_deterministically(corpus, tmp_path):
  config = load_config("tiny,samples=3")
  decode = {"method": "sample", "temperature": 1.0}
  for name in ("a", "b"):
    _run(corpus, tmp_path / name, config, FakeCaptioner(decode_settings=decode, num_samples=3))
  assert _caption_bytes(str(tmp_path / "a")) == _caption_bytes(str(tmp_path / "b"))
  rows = list(caption_output.iter_rows(str(tmp_path / "a"), prompt="short"))
  assert [r["sample"] for r in rows[:3]] == [0, 1, 2] and len(rows) == 30
  assert len({r["caption"] for r in rows}) > 10  # Samples differ (seeded per unit/batch/prompt).
  assert all(r["decode"] == decode for r in rows)


def test_hostile_ids_never_leave_the_output_dir(corpus, tmp_path):
  clip = os.path.join(corpus["root"], corpus["good"]["clip000"][0])
  ids = ["../../x", "/etc/evil", "a" * 5000, "日本語/../動画", "..", "nul\u0000byte", "CON"]
  manifest = tmp_path / "hostile.jsonl"
  manifest.write_text("".join(json.dumps({"id": i, "path": clip}) + "\n" for i in ids),
                      encoding="utf-8")
  out = tmp_path / "deep" / "out"
  outside_before = sorted(str(p) for p in tmp_path.rglob("*"))
  config = load_config("tiny")
  job.run_job(config, FakeCaptioner(), str(manifest), str(out))
  created = sorted(str(p) for p in tmp_path.rglob("*") if str(p) not in outside_before)
  # Only the output dir, its files and the folders above it (made by makedirs) are new.
  assert created and all(p.startswith(str(out)) or str(out).startswith(p) for p in created)
  names = {os.path.basename(p) for p in created if os.path.isfile(p)}
  assert all(n.startswith(("unit-", "process-", "summary-")) or n == "units.jsonl" for n in names)
  assert sorted(caption_output.read_captions(str(out), prompt="short")) == sorted(ids)


def test_windows_and_id_resolution_with_an_internvid_manifest(tmp_path):
  root = tmp_path / "videos"
  root.mkdir()
  write_clip(str(root / "yt_aaaaaaaa.mp4"), 1, num_frames=16)  # 2 s at 8 fps.
  write_clip(str(root / "yt_bbbbbbbb.mp4"), 2, num_frames=16)
  rows = [("yt_aaaaaaaa", "00:00:00.000", "00:00:01.000"),
          ("yt_aaaaaaaa", "00:00:01.000", "00:00:02.000"),
          ("yt_bbbbbbbb", "00:00:00.500", "00:00:01.500"),
          ("yt_bbbbbbbb", "00:00:05.000", "00:00:06.000"),  # After the end of the video.
          ("yt_cccccccc", "00:00:00.000", "00:00:01.000")]  # Not downloaded.
  manifest = tmp_path / "internvid.jsonl"
  manifest.write_text("".join(json.dumps({"YoutubeID": y, "Start_timestamp": s,
                                          "End_timestamp": e, "Caption": "alt"}) + "\n"
                              for y, s, e in rows))
  out = tmp_path / "out"
  summary = job.run_job(load_config("tiny"), FakeCaptioner(), str(manifest), str(out),
                        video_root=str(root))
  assert summary.videos_done == 3 and summary.failures_by_kind == {"missing": 1, "window": 1}
  captions = caption_output.caption_records(str(out), prompt="short")
  assert [(r.video_id, r.start, r.end) for r in captions] == [
      ("yt_aaaaaaaa_0.000_1.000", 0.0, 1.0), ("yt_aaaaaaaa_1.000_2.000", 1.0, 2.0),
      ("yt_bbbbbbbb_0.500_1.500", 0.5, 1.5)]
  assert all(len(r.captions) == 1 and r.captions[0].startswith("caption") for r in captions)
  assert [r.path for r in captions] == [str(root / "yt_aaaaaaaa.mp4")] * 2 + [
      str(root / "yt_bbbbbbbb.mp4")]


def test_file_scheme_when_allowed(corpus, tmp_path):
  clip = os.path.join(corpus["root"], corpus["good"]["clip003"][0])
  manifest = tmp_path / "m.csv"
  manifest.write_text(f"id,path\nremote,file://{clip}\n")
  config = load_config("tiny")
  with pytest.raises(ManifestError, match=r"m.csv:2.*'file'"):
    job.run_job(config, FakeCaptioner(), str(manifest), str(tmp_path / "refused"))
  assert not (tmp_path / "refused").exists()  # Refused before anything is written.
  config.allowed_schemes = ("file",)
  job.run_job(config, FakeCaptioner(), str(manifest), str(tmp_path / "out"))
  local = caption_output.read_captions(str(tmp_path / "out"))["remote"]
  assert colour_of(local[0]).tolist() == pytest.approx(corpus["good"]["clip003"][1], abs=4)


def test_progress_metrics_file(corpus, tmp_path):
  config = load_config("tiny")
  config.progress_every_s = 0.0
  _run(corpus, tmp_path, config)
  lines = [json.loads(l) for l in open(tmp_path / "metrics" / "process-00000.jsonl")]
  assert len(lines) >= 4
  assert [l["units_done"] for l in lines][-1] == 4 and lines[-1]["videos_done"] == 10
  assert all({"videos_per_s", "tokens_per_s", "eta_s", "elapsed_s"} <= set(l) for l in lines)
  assert lines[-1]["eta_s"] == 0


def test_changed_manifest_for_same_output_is_refused(corpus, tmp_path):
  _run(corpus, tmp_path)
  other = tmp_path / "other.jsonl"
  other.write_text("".join(l for l in open(corpus["manifest"]) if "clip004" not in l))
  with pytest.raises(job.units_lib.PlanMismatchError, match="input differs"):
    job.run_job(load_config("tiny"), FakeCaptioner(), str(other), str(tmp_path),
                video_root=corpus["root"])
  with pytest.raises(job.units_lib.PlanMismatchError, match="checkpoint"):
    _run(corpus, tmp_path, captioner=FakeCaptioner(name="another-ckpt"))


def test_a_plan_without_committed_units_is_replaced(corpus, tmp_path):
  # What a run that failed before its first commit leaves: units.jsonl with other settings.
  class Failing(FakeCaptioner):
    def caption(self, frames, prompts, rng_seed):
      raise RuntimeError("wrong resolution for this model")
  config = load_config("tiny")
  config.resolution = 48
  with pytest.raises(RuntimeError, match="wrong resolution"):
    _run(corpus, tmp_path, config=config, captioner=Failing())
  assert os.path.exists(tmp_path / "units.jsonl") and not os.listdir(tmp_path / "done")
  summary = _run(corpus, tmp_path)  # The right settings: the old plan is replaced, not refused.
  assert summary.units_committed == summary.units_total == 4
  assert json.loads(open(tmp_path / "units.jsonl").readline())["job"]["resolution"] == 32
  with pytest.raises(job.units_lib.PlanMismatchError, match="resolution"):
    _run(corpus, tmp_path, config=config)  # Now units are committed: the plan is protected.


def test_a_listed_file_that_is_no_video_is_filed_as_not_video(corpus, tmp_path):
  text = tmp_path / "passwd"
  text.write_text("root:x:0:0:root:/root:/bin/bash\n")
  manifest = tmp_path / "manifest.jsonl"
  manifest.write_text(json.dumps({"id": "passwd", "path": str(text)}) + "\n" +
                      json.dumps({"id": "clip000", "path": corpus["good"]["clip000"][0]}) + "\n")
  out = tmp_path / "out"
  summary = job.run_job(load_config("tiny"), FakeCaptioner(), str(manifest), str(out),
                        video_root=corpus["root"])
  (failure,) = caption_output.read_failures(str(out))
  assert (failure["video_id"], failure["kind"]) == ("passwd", "not_video")
  assert "not a video" in failure["reason"] and str(text) in failure["reason"]
  assert summary.videos_done == 1 and summary.failures_by_kind == {"not_video": 1}


def test_bad_captioner_output_is_an_error(corpus, tmp_path):
  class Broken(FakeCaptioner):
    def caption(self, frames, prompts, rng_seed):
      return super().caption(frames, prompts, rng_seed)[:-1]
  with pytest.raises(job.CaptionerError, match="expected 2 x 1"):
    _run(corpus, tmp_path, captioner=Broken())
  assert caption_output.done_records(str(tmp_path)) == {}


@pytest.mark.parametrize("field,value,match", [
    ("num_samples", 2, "needs decode.method='sample'"),
    ("output_format", "csv", "output_format"),
    ("batch_size", 0, "batch_size"),
    ("prompts", {"short": " "}, "prompts.short"),
])
def test_config_checks(field, value, match):
  config = load_config("tiny")
  with config.unlocked():
    config[field] = value
  with pytest.raises(ConfigError, match=match):
    job.check_config(config)


@pytest.mark.parametrize("arg", ["tiny", "default", "paper", "paper,format=arrayrecord,samples=4",
                                 "tiny,frames=8,res=64,seed=3"])
def test_config_variants_resolve(arg):
  config = load_config(arg)
  job.check_config(config)
  assert config.unit_size >= config.batch_size


def test_batch_argument_overrides_the_variants_clips_a_call():
  assert load_config("paper,batch=32").batch_size == 32
  assert load_config("paper").batch_size == 8  # what fits a v5e-256 chip (docs/scaling.md)


def test_batch_seeds_differ_by_position():
  seeds = {job.batch_seed(0, u, b, p) for u in range(3) for b in range(3) for p in range(2)}
  assert len(seeds) == 18 and all(0 <= s < 2**63 for s in seeds)
  assert job.batch_seed(1, 0, 0, 0) != job.batch_seed(0, 0, 0, 0)


def test_empty_output_dir_reads_fail_clearly(tmp_path):
  with pytest.raises(FileNotFoundError, match="no such caption output"):
    caption_output.read_captions(str(tmp_path / "nope"))
  shutil.rmtree(tmp_path)


def test_prefetch_keeps_the_captioner_fed(corpus, tmp_path):
  """With a captioner slower than decoding, the loop hardly ever waits for frames."""
  config = load_config("tiny")
  config.prefetch.num_workers, config.prefetch.buffer = 2, 8
  summary = _run(corpus, tmp_path, config, FakeCaptioner(delay_s=0.05))
  # 5 batches x 2 prompts x 50 ms of "accelerator" time; only the first batch's decode is waited on.
  assert summary.input_wait_fraction < 0.35, summary
