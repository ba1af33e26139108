"""TensorFlow Datasets builders for data sets that need a manual download (videos + annotations).

    VidistillMsrvtt            MSR-VTT: train-9k and 1k-A test, with captions.
    VidistillAnnotatedVideos   any `annotations.READERS` format + a video folder (one config each).

Importing this package imports TensorFlow; the rest of vidistill.data does not need it. (TFDS adds
builder classes to its own registry when they are defined, so `tfds.builder("vidistill_msrvtt")`
works after this import; vidistill itself uses the classes directly.)
"""
from vidistill.data.tfds.annotated_videos import AnnotatedVideosConfig, VidistillAnnotatedVideos
from vidistill.data.tfds.examples import VideoConfig
from vidistill.data.tfds.msrvtt import VidistillMsrvtt

__all__ = ["AnnotatedVideosConfig", "VideoConfig", "VidistillAnnotatedVideos", "VidistillMsrvtt"]
