"""A whole synthetic world on disk: layout, formats, determinism, completeness markers."""
import csv
import importlib.util
import json
import os

import numpy as np
import pytest

from vidistill.data import shards
from vidistill.data import video_io
from vidistill.data.synthetic import clips
from vidistill.data.synthetic import world

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "data", "synthetic.py")


def get_config(arg="tiny"):
  spec = importlib.util.spec_from_file_location("synthetic_config", CONFIG_FILE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope="module")
def config():
  return get_config("tiny")


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory, config):
  path = str(tmp_path_factory.mktemp("world"))
  assert world.synth(config, path, num_workers=1)
  return path


def _files(root, skip=("shards",)):
  out = {}
  for folder, _, names in os.walk(root):
    rel = os.path.relpath(folder, root)
    if rel.split(os.sep)[0] in skip:
      continue
    for name in names:
      with open(os.path.join(folder, name), "rb") as f:
        out[os.path.normpath(os.path.join(rel, name))] = f.read()
  return out


def test_layout(world_dir, config):
  assert os.path.isfile(os.path.join(world_dir, "DONE"))
  assert not [n for n in os.listdir(world_dir) if n.startswith(".tmp")]
  for split in clips.SPLITS:
    assert len(world.load_truth(world_dir, split)) == config.splits[split]
    shard_files = sorted(os.listdir(os.path.join(world_dir, "shards")))
    n = config.num_shards[split]
    assert [f for f in shard_files if f.startswith(split + "-")] == [
        f"{split}-{k:05d}-of-{n:05d}.tfrecord" for k in range(n)]
  for name in ("image_text_captions.json", "labeled_vatex.json", "labeled_short_vatex.json",
               "narratives_vidln.jsonl", "pool_internvid.jsonl", "test_msrvtt.json",
               "qa_nextqa.csv", "qa_msrvtt_qa.json"):
    assert os.path.getsize(os.path.join(world_dir, "annotations", name)) > 0
  for record in world.load_truth(world_dir, "pool"):
    assert os.path.isfile(os.path.join(world_dir, "videos", "pool", record["id"] + ".mp4"))
  assert len(os.listdir(os.path.join(world_dir, "images"))) == config.splits.image_text


def test_world_json_states_chance_levels(world_dir, config):
  info = world.load_world(world_dir)
  n = config.splits.test
  assert info["chance"]["retrieval_r1"] == pytest.approx(1 / n, abs=1e-6)
  assert info["chance"]["retrieval_r5"] == pytest.approx(min(1, 5 / n), abs=1e-6)
  assert info["chance"]["qa_multiple_choice"] == pytest.approx(0.2)
  assert info["chance"]["first_action_accuracy"] == pytest.approx(1 / len(config.actions), abs=1e-6)
  assert info["splits"]["test"]["size"] == n and info["seed"] == config.seed
  assert info["vocab"]["colours"]["red"] == [225, 35, 35]


def test_annotation_layouts(world_dir, config):
  ann = os.path.join(world_dir, "annotations")
  load = lambda name: json.load(open(os.path.join(ann, name), encoding="utf-8"))
  lines = lambda name: [json.loads(l) for l in open(os.path.join(ann, name), encoding="utf-8")]
  truth = {s: world.load_truth(world_dir, s) for s in clips.SPLITS}

  coco = load("image_text_captions.json")
  assert {i["file_name"] for i in coco["images"]} == {f"{r['id']}.png" for r in truth["image_text"]}
  assert [a["caption"] for a in coco["annotations"]] == [r["caption"] for r in truth["image_text"]]

  vatex = load("labeled_vatex.json")
  assert [v["videoID"] for v in vatex] == [r["id"] for r in truth["labeled"]]
  assert all(v["videoID"].endswith("_000000_000001") for v in vatex)  # <id>_<start>_<end>, 1 s.
  assert [v["enCap"] for v in load("labeled_short_vatex.json")] == [
      [r["short_caption"]] for r in truth["labeled"]]

  for line, r in zip(lines("narratives_vidln.jsonl"), truth["narratives"]):
    assert line["video_id"] == r["id"] and line["caption"] == r["narrative"]
    assert [a["caption"] for a in line["actor_narratives"]] == r["narrative"].replace(
        ". ", ".\n").splitlines()
    assert line["timed_caption"][0].keys() == {"utterance", "start_time", "end_time"}

  for line, r in zip(lines("pool_internvid.jsonl"), truth["pool"]):
    assert line == {"YoutubeID": r["id"], "Start_timestamp": "00:00:00.000",
                    "End_timestamp": "00:00:01.000", "Caption": r["alt_text"]}

  msrvtt = load("test_msrvtt.json")
  assert [v["video_id"] for v in msrvtt["videos"]] == [f"video{i}"
                                                       for i in range(config.splits.test)]
  sentences = [s["caption"] for s in msrvtt["sentences"]]
  assert len(sentences) == len(set(sentences))  # One right video per sentence.
  assert {v["split"] for v in msrvtt["videos"]} == {"test"}

  with open(os.path.join(ann, "qa_nextqa.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["video", "frame_count", "width", "height", "question", "answer", "qid",
                           "type", "a0", "a1", "a2", "a3", "a4"]
  questions = [(r["id"], q) for r in truth["qa"] for q in r["questions"]]
  assert len(rows) == len(questions)
  for row, (vid, q) in zip(rows, questions):
    assert row["video"] == vid and row[f"a{row['answer']}"] == q["answer"]
  qa = load("qa_msrvtt_qa.json")
  assert [(f"video{e['video_id']}", e["answer"]) for e in qa] == [(v, q["answer"])
                                                                   for v, q in questions]


def test_shards_hold_the_exact_frames_and_the_split_text(world_dir):
  for split, keys in [("pool", {"id", "frames", "alt_text"}),
                      ("labeled", {"id", "frames", "gold_captions", "short_caption"}),
                      ("image_text", {"id", "frames", "caption"})]:
    records = world.load_truth(world_dir, split)
    examples = list(shards.read_shards(os.path.join(world_dir, "shards", f"{split}-*")))
    by_id = {e["id"]: e for e in examples}
    assert sorted(by_id) == sorted(r["id"] for r in records)
    for record in records:
      example = by_id[record["id"]]
      assert set(example) == keys  # The pool keeps its gold captions in truth/ only.
      np.testing.assert_array_equal(example["frames"], world.regenerate_frames(record))


def test_videos_and_images_show_the_clip(world_dir, config):
  from PIL import Image
  for record in world.load_truth(world_dir, "test")[:3]:
    path = os.path.join(world_dir, "videos", "test", record["id"] + ".mp4")
    info = video_io.video_info(path)
    assert info["num_frames"] == config.num_frames and info["width"] == config.resolution
    decoded = video_io.read_video(path, config.num_frames).astype(float)
    assert np.abs(decoded - world.regenerate_frames(record)).mean() < 6  # h264 at crf 18.
  record = world.load_truth(world_dir, "image_text")[0]
  image = np.asarray(Image.open(os.path.join(world_dir, "images", record["id"] + ".png")))
  np.testing.assert_array_equal(image, world.regenerate_frames(record)[0])


def test_same_config_gives_identical_files(world_dir, config, tmp_path):
  again = str(tmp_path / "again")
  world.synth(config, again, num_workers=1)
  first, second = _files(world_dir), _files(again)
  assert first.keys() == second.keys() and first == second
  a = list(shards.read_shards(os.path.join(world_dir, "shards", "test-*")))
  b = list(shards.read_shards(os.path.join(again, "shards", "test-*")))
  assert all((x["frames"] == y["frames"]).all() and x["id"] == y["id"] for x, y in zip(a, b))


def test_another_seed_gives_another_world(world_dir, tmp_path):
  other = get_config("tiny,seed=1")
  with other.unlocked():
    for split in ("image_text", "labeled", "narratives", "qa"):
      other.splits[split] = 0
  path = str(tmp_path / "seed1")
  world.synth(other, path, num_workers=1)
  assert _files(path)["truth/pool.jsonl"] != _files(world_dir)["truth/pool.jsonl"]


def test_complete_world_is_kept_and_incomplete_one_rewritten(world_dir, config, tmp_path):
  stamp = os.path.getmtime(os.path.join(world_dir, "world.json"))
  assert not world.synth(config, world_dir, num_workers=1)
  assert os.path.getmtime(os.path.join(world_dir, "world.json")) == stamp

  partial = tmp_path / "partial"
  (partial / ".tmp-synth" / "truth").mkdir(parents=True)
  (partial / ".tmp-synth" / "truth" / "pool.part-00000.jsonl").write_text("half a line")
  (partial / "world.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match="not a complete synthetic world"):
    world.load_world(str(partial))
  small = get_config("tiny")
  with small.unlocked():
    for split in ("image_text", "labeled", "narratives", "test", "qa"):
      small.splits[split] = 0
  assert world.synth(small, str(partial), num_workers=1)
  assert not (partial / ".tmp-synth").exists()
  assert world.load_world(str(partial))["splits"]["pool"]["size"] == small.splits.pool


def test_world_videos_encode_to_the_same_bytes_every_time(world_dir, config):
  # x264's assembly reads memory it never wrote on clips this small, so without bit_exact one
  # encode in tens of the same frames came out different (and decoded up to 14 levels apart).
  from vidistill.data import video_write
  clips_in_pool = list(shards.read_shards(os.path.join(world_dir, "shards", "pool-*")))
  for example in clips_in_pool:
    with open(os.path.join(world_dir, "videos", "pool", f"{example['id']}.mp4"), "rb") as f:
      on_disk = f.read()
    for _ in range(15):
      assert video_write.encode_video(example["frames"], config.fps, config.video_codec,
                                     bit_exact=True) == on_disk


@pytest.mark.slow
def test_worker_processes_give_the_same_bytes(world_dir, config, tmp_path):
  parallel = str(tmp_path / "parallel")
  world.synth(config, parallel, num_workers=2)
  assert _files(parallel) == _files(world_dir)


def test_media_splits_limits_the_media_files_not_the_rest(world_dir, config, tmp_path):
  some = get_config("tiny")
  some.media_splits = ("test", "qa")
  path = str(tmp_path / "some")
  world.synth(some, path, num_workers=1)
  assert sorted(os.listdir(os.path.join(path, "videos"))) == ["qa", "test"]
  assert not os.path.exists(os.path.join(path, "images"))
  info = world.load_world(path)
  assert info["splits"]["pool"]["media"] is None and info["splits"]["test"]["media"] == "videos/test"
  # Everything but the skipped media (and world.json, which records the setting) is the same.
  full, part = _files(world_dir), _files(path)
  kept = {k for k in full if not k.startswith(("videos/pool", "videos/labeled",
                                                "videos/narratives", "images/"))}
  assert part.keys() == kept
  assert all(part[k] == full[k] for k in kept if k != "world.json")
  for split in ("pool", "test"):
    a = list(shards.read_shards(os.path.join(world_dir, "shards", f"{split}-*")))
    b = list(shards.read_shards(os.path.join(path, "shards", f"{split}-*")))
    assert len(a) == len(b) and all((x["frames"] == y["frames"]).all() for x, y in zip(a, b))
  bad = get_config("tiny")
  bad.media_splits = ("test", "videos")
  with pytest.raises(Exception, match=r"media_splits.*videos"):
    world.synth(bad, str(tmp_path / "bad"))
