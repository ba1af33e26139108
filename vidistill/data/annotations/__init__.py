"""Readers of the real data sets' published annotation files, all returning `VideoRecord`s.

`READERS` is the one table of formats (`vidistill data convert --format <name>` looks names up in
it). Each reader is `reader(path, **options) -> list[VideoRecord]`, options all defaulted, so
`READERS[name](path)` works on a file in the data set's published layout; a malformed file raises
`vidistill.data.records.AnnotationError` naming the file and line (or JSON entry and key).
docs/datasets.md says where each file comes from and how to lay out its videos;
`resolve_video(record, video_root)` finds a record's video file and the window to decode in it
(use its window, not `record.start/end`: a clip file found for a record is decoded whole), and
`record_id(record)` gives a key unique per record (clip or question id where videos repeat).
"""
from __future__ import annotations

from typing import Callable

from vidistill.data.annotations.activitynet_qa import read_activitynet_qa
from vidistill.data.annotations.coco import read_coco_captions
from vidistill.data.annotations.common import parse_timestamp, record_id
from vidistill.data.annotations.internvid import read_internvid
from vidistill.data.annotations.kinetics import read_kinetics
from vidistill.data.annotations.msrvtt import read_msrvtt, read_msrvtt_1ka, read_msrvtt_train9k
from vidistill.data.annotations.msrvtt_qa import read_msrvtt_qa
from vidistill.data.annotations.nextqa import read_nextqa
from vidistill.data.annotations.paths import (DEFAULT_EXTENSIONS, ResolvedVideo, VideoPathError,
                                              resolve_video, resolve_video_path)
from vidistill.data.annotations.smit import read_smit
from vidistill.data.annotations.vatex import read_vatex
from vidistill.data.annotations.videocc import read_videocc
from vidistill.data.annotations.vidln import read_vidln
from vidistill.data.records import AnnotationError, VideoRecord

Reader = Callable[..., list[VideoRecord]]

READERS: dict[str, Reader] = {
    # Video captions.
    "msrvtt": read_msrvtt,                  # videodatainfo JSON {"videos", "sentences"}
    "msrvtt_train9k": read_msrvtt_train9k,  # MSRVTT_train.9k.csv (+ MSRVTT_data.json beside it)
    "msrvtt_1ka": read_msrvtt_1ka,          # MSRVTT_JSFUSION_test.csv
    "vatex": read_vatex,                    # [{"videoID", "enCap", "chCap"}]
    "smit": read_smit,                      # Spoken Moments split list + transcriptions/
    "vidln": read_vidln,                    # Video Localized Narratives JSONL
    # Video QA.
    "nextqa": read_nextqa,                  # video,frame_count,...,a0..a4 CSV
    "activitynet_qa": read_activitynet_qa,  # *_q.json + *_a.json
    "msrvtt_qa": read_msrvtt_qa,            # [{"answer", "category_id", "id", "question", ...}]
    # Classification.
    "kinetics": read_kinetics,              # label,youtube_id,time_start,time_end,split[,is_cc]
    # Web-scale video-text (alt-text / generated captions).
    "internvid": read_internvid,            # JSONL {"YoutubeID", "Start_timestamp", ...}
    "videocc": read_videocc,                # headerless CSV video,start µs,end µs,caption
    # Image-text.
    "coco_captions": read_coco_captions,    # {"images", "annotations"}
}

__all__ = [
    "READERS", "Reader", "AnnotationError", "VideoRecord", "DEFAULT_EXTENSIONS", "ResolvedVideo",
    "VideoPathError", "resolve_video", "resolve_video_path", "parse_timestamp", "record_id",
    *sorted(f.__name__ for f in READERS.values()),
]
