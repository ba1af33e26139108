"""Any annotation format of `annotations.READERS` plus a folder of videos, as TFDS shards.

One config per format (named after it), e.g. `vidistill_annotated_videos/vatex`; a custom
`AnnotatedVideosConfig` changes frames, resolution or where the files are:

    config = AnnotatedVideosConfig(name="vatex_f8", format="vatex", num_frames=8, resolution=64)
    builder = VidistillAnnotatedVideos(config=config, data_dir=...)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=...))
"""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from vidistill.data import annotations
from vidistill.data.annotations import common
from vidistill.data.tfds import examples

_ANNOTATION_SUFFIXES = (".json", ".jsonl", ".csv", ".txt")
# Files read *alongside* a split's annotation file, which are not splits themselves.
_COMPANIONS = {
    "activitynet_qa": re.compile(r"_a\.json$"),
    "nextqa": re.compile(r"^map_vid_vidorID\.json$"),
    "msrvtt_train9k": re.compile(r"^MSRVTT_data\.json$"),
}


@dataclasses.dataclass(eq=False)
class AnnotatedVideosConfig(examples.VideoConfig):
  """`format` is a key of `annotations.READERS`; paths are relative to the manual dir."""
  format: str = "vatex"
  # {split: annotation file}; empty: every file in `annotations_dir` whose name says its split
  # (train/val/test words, as in vatex_training_v1.0.json), companion files excepted.
  split_files: dict[str, str] = dataclasses.field(default_factory=dict)
  annotations_dir: str = "annotations"
  videos_dir: str = "videos"


def _discover_splits(config: AnnotatedVideosConfig, manual_dir: str) -> dict[str, str]:
  if config.split_files:
    return {s: os.path.join(manual_dir, p) for s, p in config.split_files.items()}
  folder = os.path.join(manual_dir, config.annotations_dir)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"no annotation folder {folder}; see MANUAL_DOWNLOAD_INSTRUCTIONS")
  companion = _COMPANIONS.get(config.format)
  splits: dict[str, list[str]] = {}
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if (not os.path.isfile(path) or not name.endswith(_ANNOTATION_SUFFIXES)
        or companion and companion.search(name)):
      continue
    split = common.split_from_filename(name)
    if split:
      splits.setdefault(split, []).append(path)
  clashes = {s: p for s, p in splits.items() if len(p) > 1}
  if clashes or not splits:
    raise ValueError(f"cannot tell the splits of {folder} ({clashes or 'no file names a split'}); "
                     "set AnnotatedVideosConfig.split_files={split: file}")
  return {s: p[0] for s, p in splits.items()}


class VidistillAnnotatedVideos(tfds.core.GeneratorBasedBuilder):
  """Videos of a local data-set copy with its captions / QA / labels, in any READERS format."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "One config per annotation format."}
  BUILDER_CONFIGS = [AnnotatedVideosConfig(name=name, format=name,
                                           description=f"{name} annotations, 16 frames at 224x224.")
                     for name in annotations.READERS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put the data set's published annotation files and its videos in the manual dir:
    annotations/<files>    e.g. vatex_training_v1.0.json, vatex_validation_v1.0.json; each file
                           name must say its split (train/val/test), or set split_files
    videos/...             the videos, named as the data set's ids (docs/datasets.md lists each
                           layout: <id>.mp4, <split>/<id>.mp4, <split>/<label>/<clip>.mp4, ...)
  The config name is the annotation format (a key of vidistill.data.annotations.READERS).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    if self.builder_config.format not in annotations.READERS:
      raise ValueError(f"AnnotatedVideosConfig.format={self.builder_config.format!r} is not one of "
                       f"{sorted(annotations.READERS)}")
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),  # annotations.record_id: unique per example.
            "video_id": tfds.features.Text(),
            "video": examples.video_feature(self.builder_config),
            "captions": tfds.features.Sequence(tfds.features.Text()),
            "question": tfds.features.Text(),
            "answer": tfds.features.Text(),
            "candidates": tfds.features.Sequence(tfds.features.Text()),
            "answer_index": tfds.features.Scalar(dtype=np.int32),  # -1: open-ended / none.
            "label": tfds.features.Text(),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    manual = str(dl_manager.manual_dir)
    reader = annotations.READERS[config.format]
    videos = os.path.join(manual, config.videos_dir)
    return {split: self._generate_examples(reader(path), videos)
            for split, path in _discover_splits(config, manual).items()}

  def _generate_examples(self, records, video_root):
    for index, record, frames in examples.decode_records(records, video_root, self.builder_config):
      yield examples.example_key(index, record), {
          "id": annotations.record_id(record), "video_id": record.video_id, "video": frames,
          "captions": examples.texts(record.captions), "question": record.question or "",
          "answer": record.answer or "", "candidates": list(record.candidates),
          "answer_index": -1 if record.answer_index is None else record.answer_index,
          "label": record.label or ""}
