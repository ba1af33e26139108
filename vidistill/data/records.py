"""The one record every annotation reader returns, whatever the data set's file format.

Real data sets (MSR-VTT, VATEX, VidLN, NExT-QA, InternVid, ...) and the synthetic world's files are
all parsed into `VideoRecord`s, so the seqio tasks, the captioning job and the evaluators read one
shape. A record is one (video or window, annotation) pair: a video with 20 captions is one record
with 20 captions; a video with 5 questions is 5 records.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  video_id: str                      # The data set's own id ("video7020", "Ptf_2VRj-V0_000122_000132").
  path: str | None = None            # Local path or URL when the annotation gives one.
  start: float | None = None         # Window in seconds within the file; None = from the start.
  end: float | None = None           # None = to the end.
  split: str = ""                    # "train" / "val" / "test" / ... as the data set names it.
  captions: tuple[str, ...] = ()     # Captions, alt-text or narrations describing the window.
  question: str | None = None        # QA: the question ...
  answer: str | None = None          # ... its answer (open-ended, or the right candidate's text),
  candidates: tuple[str, ...] = ()   # ... multiple-choice candidates,
  answer_index: int | None = None    # ... and the index of the right one among them.
  label: str | None = None           # Classification label (Kinetics class name).
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # Format-specific fields.

  def __post_init__(self):
    if not self.video_id:
      raise ValueError("VideoRecord.video_id must be a non-empty string")
    if self.start is not None and self.end is not None and self.end < self.start:
      raise ValueError(f"VideoRecord {self.video_id!r}: window end {self.end} < start {self.start}")
    if self.answer_index is not None and not 0 <= self.answer_index < len(self.candidates):
      raise ValueError(f"VideoRecord {self.video_id!r}: answer_index {self.answer_index} out of range "
                       f"for {len(self.candidates)} candidates")


class AnnotationError(ValueError):
  """A malformed annotation file: the message names the file and the line (or entry)."""

  def __init__(self, path: str, line: int | None, reason: str):
    where = f"{path}:{line}" if line is not None else path
    super().__init__(f"{where}: {reason}")
    self.path, self.line, self.reason = path, line, reason
