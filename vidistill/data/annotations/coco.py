"""COCO Captions (Chen et al. 2015, cocodataset.org): image-text data for the image VLM stage.

Layout (`annotations/captions_train2017.json`, `captions_val2017.json`):
  {"info": {...}, "licenses": [...],
   "images": [{"id": 391895, "file_name": "000000391895.jpg", "height": 360, "width": 640,
               "coco_url": "...", ...}],
   "annotations": [{"id": 770337, "image_id": 391895, "caption": "A man with a red helmet ..."}]}
One record per image (about 5 captions each); `path` is the image's file name, relative to the
image folder (train2017/). A record of an image is a one-frame "video": readers of records decode
it as a still.
"""
from __future__ import annotations

from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError, VideoRecord


def read_coco_captions(path: str, *, split: str | None = None) -> list[VideoRecord]:
  """One record per image with all its captions, in the file's annotation order."""
  split = split if split is not None else common.split_from_filename(path)
  images, annotations = common.load_json_lists(path, "images", "annotations")
  captions: dict[int | str, list[str]] = {}
  for i, image in enumerate(images):
    image_id = common.get(image, "id", (int, str), path, where=f"images[{i}]: ")
    if image_id in captions:
      raise AnnotationError(path, None, f"images[{i}]: duplicate image id {image_id!r}")
    captions[image_id] = []
  for i, ann in enumerate(annotations):
    where = f"annotations[{i}]: "
    image_id = common.get(ann, "image_id", (int, str), path, where=where)
    if image_id not in captions:
      raise AnnotationError(path, None, f"{where}image_id {image_id!r} is not listed in 'images'")
    captions[image_id].append(common.get_text(ann, "caption", path, where=where))
  records = []
  for i, image in enumerate(images):
    extra = {k: image[k] for k in ("width", "height", "coco_url") if k in image}
    records.append(VideoRecord(
        video_id=str(image["id"]), split=split,
        path=common.get_text(image, "file_name", path, where=f"images[{i}]: "),
        captions=tuple(captions[image["id"]]), extra=extra))
  return records
