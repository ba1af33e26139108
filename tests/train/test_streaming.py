"""A stage's examples written as shards and streamed back give the in-memory path's batches."""
import numpy as np
import pytest

from vidistill.data.synthetic import world
from vidistill.pipeline import layout
from vidistill.train import stage
from vidistill.train import stage_input as si
from vidistill.train import streaming


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
  w = str(tmp_path_factory.mktemp("world"))
  world.synth(layout.load_config("data/synthetic.py", "tiny"), w)
  return w


def _config(stage_name, world_dir, arg=""):
  return layout.load_config(f"train/{stage_name}.py", f"tiny,world={world_dir}{arg}")


@pytest.mark.parametrize("stage_name,arg,model_kind", [
    ("visual_adaptation", "", "vlm"),                      # Caption draws from lists.
    ("language_adaptation", "", "vlm"),                    # Synthesised instructions.
    ("dual_encoder", ",source=alt_text", "dual_encoder"),  # Contrastive: no prompt.
])
def test_streamed_batches_equal_in_memory_batches(tiny_world, tmp_path, stage_name, arg,
                                                  model_kind):
  config = _config(stage_name, tiny_world, arg)
  prefix = str(tmp_path / "shards")
  paths, count = stage.write_shards(config, prefix, 3)
  assert len(paths) == 3 and all(p.endswith(".array_record") for p in paths)
  examples = si.load_examples(config.data, si.vocabulary(config.data), model_kind)
  assert count == len(examples)
  with config.unlocked():
    config.data.shards = prefix
  assert streaming.streams(config.data)
  assert streaming.dataset_size(config.data, model_kind) == len(examples)

  in_memory = si.data_fn(config.data, examples, batch_size=4, seed=5, model_kind=model_kind)
  streamed = streaming.data_fn(config.data, batch_size=4, seed=5)
  for where in (dict(start_step=0), dict(start_step=3, process_index=1, process_count=2)):
    a, b = in_memory(**where), streamed(**where)
    for step in range(2 * len(examples) // 4 + 1):  # Past the end of an epoch.
      x, y = next(a), next(b)
      assert sorted(x) == sorted(y) == sorted(streaming.KEYS[model_kind])
      for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=f"{where} step {step} {key}")


def test_in_memory_option_and_what_streaming_checks(tiny_world, tmp_path):
  config = _config("dual_encoder", tiny_world, ",source=alt_text")
  assert not streaming.streams(config.data)  # The miniature's default: in memory.
  with config.unlocked():
    config.data.in_memory = False
  with pytest.raises(si.StageDataError, match=r"data.in_memory=False streams from data.shards, "
                     r"which is empty.*--write_shards PREFIX"):
    streaming.streams(config.data)
  prefix = str(tmp_path / "de")
  stage.write_shards(config, prefix, 2)
  with config.unlocked():
    config.data.shards = prefix
    config.data.in_memory = True
  assert not streaming.streams(config.data)  # Explicitly held in memory, shards or not.
  # Shards of another stage's examples, lengths or frames are refused, naming both sides.
  with pytest.raises(si.StageDataError, match=r"\['text_tokens', 'video'\], but a vlm stage "
                     r"reads \['prompt_tokens', 'target_tokens', 'video'\]"):
    streaming.dataset_size(config.data, "vlm")
  with config.unlocked():
    config.data.seq_lengths.targets = 20
  with pytest.raises(si.StageDataError, match="text_tokens has length 48 but "
                     "data.seq_lengths.targets=20"):
    streaming.dataset_size(config.data, "dual_encoder")
  with config.unlocked():
    config.data.seq_lengths.targets = 48
  with pytest.raises(si.StageDataError, match="clips of 8 frames of 32 px, but this stage's "
                     "data gives 16 frames of 32 px"):
    streaming.dataset_size(config.data, "dual_encoder", (16, 32))


def test_paper_variants_stream_by_default():
  config = layout.load_config("train/visual_adaptation.py", "paper")
  assert config.data.in_memory is False
  with config.unlocked():
    config.data.shards = "/data/va/train"
  assert streaming.streams(config.data)


def test_clips_converted_by_data_convert_become_streamed_stage_examples(tiny_world, tmp_path):
  from vidistill.data import annotations  # pylint: disable=g-import-not-at-top
  from vidistill.data import command as data_command  # pylint: disable=g-import-not-at-top
  from vidistill.data import shards  # pylint: disable=g-import-not-at-top
  from vidistill.data import video_io  # pylint: disable=g-import-not-at-top
  # What `vidistill data convert --format msrvtt ... --num_frames 8 --resolution 32` writes.
  records = annotations.READERS["msrvtt"](
      f"{tiny_world}/annotations/test_msrvtt.json")
  clips = str(tmp_path / "clips" / "msrvtt")
  shards.write_shards(
      (data_command.convert_example(
          r, video_io.read_video(annotations.resolve_video(r, f"{tiny_world}/videos/test").path, 8,
                                 resolution=32), annotations.record_id(r)) for r in records),
      clips, 2)
  config = _config("visual_adaptation", tiny_world)
  with config.unlocked():
    config.data.source = "clips"
    config.data.clips = ""
  with pytest.raises(si.StageDataError, match="data.source='clips' needs data.clips"):
    stage.write_shards(config, str(tmp_path / "none"), 1)
  with config.unlocked():
    config.data.clips = clips
  prefix = str(tmp_path / "va")
  _, count = stage.write_shards(config, prefix, 2)
  assert count == len(records) == 6
  with config.unlocked():
    config.data.shards = prefix
  assert streaming.dataset_size(config.data, "vlm", (8, 32)) == count
  batch = next(streaming.data_fn(config.data, batch_size=4, seed=0)())
  assert batch["video"].shape == (4, 8, 32, 32, 3)
  vocab = si.vocabulary(config.data)
  texts = {vocab.decode(t.tolist()) for t in batch["target_tokens"]}
  captions = {c for r in records for c in r.captions}
  assert texts <= captions, texts - captions  # Each target is one of its clip's captions.
