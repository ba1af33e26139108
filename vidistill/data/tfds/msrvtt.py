"""MSR-VTT as TFDS shards: the 9k training videos and the 1k-A test videos, with their captions."""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

from vidistill.data import annotations
from vidistill.data.tfds import examples


class VidistillMsrvtt(tfds.core.GeneratorBasedBuilder):
  """MSR-VTT (Xu et al. 2016) for captioning and retrieval: train = 9k split, test = 1k-A."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Train-9k / test 1k-A from the CLIP4Clip split files."}
  BUILDER_CONFIGS = [examples.VideoConfig(**c) for c in examples.STANDARD_CONFIGS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  MSR-VTT cannot be downloaded automatically. Put in the manual dir (--manual_dir, default
  ~/tensorflow_datasets/downloads/manual/):
    MSRVTT_data.json            captions (videodatainfo layout, train+val+test merged)
    MSRVTT_train.9k.csv         the 9k training video ids
    MSRVTT_JSFUSION_test.csv    the 1k-A test (video, sentence) pairs
    videos/all/video0.mp4 ...   the 10,000 clips (or directly videos/video0.mp4 ...)
  The three annotation files are in CLIP4Clip's msrvtt_data.zip
  (github.com/ArrowLuo/CLIP4Clip, "Data Preparing"); the clips in MSRVTT.zip from the MSR-VTT
  site. docs/datasets.md in vidistill walks through it.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "video": examples.video_feature(self.builder_config),
            # Test: captions[0] is the 1k-A query sentence, the video's other captions follow.
            "captions": tfds.features.Sequence(tfds.features.Text()),
        }),
        supervised_keys=None,
        homepage="https://www.microsoft.com/en-us/research/publication/msr-vtt-a-large-video-"
                 "description-dataset-for-bridging-video-and-language/",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual = str(dl_manager.manual_dir)
    captions = os.path.join(manual, "MSRVTT_data.json")
    videos = os.path.join(manual, "videos", "all")
    videos = videos if os.path.isdir(videos) else os.path.join(manual, "videos")
    train = annotations.read_msrvtt_train9k(os.path.join(manual, "MSRVTT_train.9k.csv"),
                                            captions_path=captions)
    test = annotations.read_msrvtt_1ka(os.path.join(manual, "MSRVTT_JSFUSION_test.csv"),
                                       captions_path=captions)
    return {"train": self._generate_examples(train, videos),
            "test": self._generate_examples(test, videos)}

  def _generate_examples(self, records, video_root):
    for index, record, frames in examples.decode_records(records, video_root, self.builder_config):
      yield examples.example_key(index, record), {
          "id": record.video_id, "video": frames, "captions": examples.texts(record.captions)}
