"""Text-video retrieval with a dual encoder: R@1/5/10, MdR, MnR in both directions.

Each record is one video; its captions are the text queries (`captions="all"`: MSR-VTT full with
20 per video, VATEX with 10) or only the first one (`captions="first"`: MSR-VTT 1k-A, where the
`msrvtt_1ka` reader puts the query sentence first). Video and text embeddings are computed in
batches, L2-normalised (cosine similarity, CLIP), and ranked by
`metrics.retrieval_metrics_from_embeddings`, which streams over chunks and never holds the
[texts, videos] matrix, so a 1M x 1M search fits in memory. The video-to-text rank is that of a
video's best caption ("best_caption" protocol, docs/metrics.md).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from vidistill.config_args import ConfigError
from vidistill.eval.evaluators import base, common, inputs
from vidistill.eval.metrics import retrieval as retrieval_metrics
from vidistill.eval.metrics import similarity

CAPTIONS = ("all", "first")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrievalOptions(common.DataOptions):
  captions: str = "all"                 # Queries per video: "all" its captions, or the "first".
  ties: str = "pessimistic"             # Tie policy of ranks (similarity.TIE_POLICIES).
  chunk: int = 4096                     # Keys per block of the streamed search.
  query_chunk: int = 1024               # Queries per block.


class RetrievalEvaluator(base.Evaluator):
  """Yields t2v/R@{1,5,10}, t2v/MdR, t2v/MnR, the same for v2t, num_videos, num_texts
  (and num_failed when on_error="skip" left videos out)."""
  kind = "retrieval"
  options_class = RetrievalOptions
  model_protocol = common.VideoTextEmbedder

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    o = self.options
    self.check_choice("captions", CAPTIONS)
    self.check_choice("ties", similarity.TIE_POLICIES)
    if o.chunk < 1 or o.query_chunk < 1:
      raise ConfigError(f"{self.where}: chunk and query_chunk must be positive")

  def run(self, model: common.VideoTextEmbedder) -> Iterator[tuple[str, float]]:
    o = self.options
    records = self.load(model, "captions", "retrieval needs at least one caption per video")
    videos, kept = inputs.embed_videos(model, records, options=o, settings=self.settings,
                                       batch_size=self.batch_size, label=self.name)
    texts, text_to_video = [], []
    for position, index in enumerate(kept):
      captions = records[index].captions
      captions = captions[:1] if o.captions == "first" else captions
      texts.extend(captions)
      text_to_video.extend([position] * len(captions))
    text_embeddings = inputs.embed_texts(model, texts, settings=self.settings,
                                         batch_size=self.batch_size, label=self.name)
    yield from retrieval_metrics.retrieval_metrics_from_embeddings(
        text_embeddings, videos, np.asarray(text_to_video, np.int32), ties=o.ties,
        chunk=o.chunk, query_chunk=o.query_chunk).items()
    yield "num_videos", len(kept)
    yield "num_texts", len(texts)
    if len(kept) < len(records):
      yield "num_failed", len(records) - len(kept)
