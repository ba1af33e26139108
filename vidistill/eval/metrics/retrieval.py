"""Text-video retrieval metrics: R@1/5/10, median and mean rank, both directions.

One protocol for one caption per video (MSR-VTT 1k-A, where it reduces to the diagonal of a
square matrix) and for several (MSR-VTT full, VATEX): texts are tied to videos by
`text_to_video[t] = v`.
- text -> video: each text is a query; its rank is its video's rank among all videos.
- video -> text ("best_caption", default): each video is a query over all texts; its rank is the
  best rank of any of its captions (VSE++ / Frozen-in-Time `v2t_metrics`, the CLIP-era
  convention). "max_over_captions" is CLIP4Clip's multi-sentence variant instead: a video ranks
  the *videos' caption sets*, each scored by its best caption (`tensor_video_to_text_sim`).

Recalls are percentages; MdR/MnR are 1-based ranks (lower is better). Ties follow
`similarity.TIE_POLICIES`, default "pessimistic" (see docs/metrics.md).
"""
from typing import Dict, Sequence

import numpy as np

from vidistill.eval.metrics import similarity

V2T_PROTOCOLS = ("best_caption", "max_over_captions")
RECALL_AT = (1, 5, 10)


class RetrievalError(ValueError):
  """Similarities, embeddings and `text_to_video` do not fit together."""


def rank_metrics(ranks: np.ndarray, prefix: str,
                 recall_at: Sequence[int] = RECALL_AT) -> Dict[str, float]:
  """{prefix/R@k: % of ranks <= k, prefix/MdR: median rank, prefix/MnR: mean rank}.

  Args:
    ranks: [Q] 1-based ranks of the true items.
    prefix: name prefix, e.g. "t2v".
    recall_at: the k of R@k.
  """
  ranks = np.asarray(ranks, np.float64)
  out = {f"{prefix}/R@{k}": float(100.0 * np.mean(ranks <= k)) for k in recall_at}
  out[f"{prefix}/MdR"] = float(np.median(ranks))
  out[f"{prefix}/MnR"] = float(np.mean(ranks))
  return out


def captions_per_video(text_to_video: np.ndarray, num_videos: int) -> np.ndarray:
  """[V, M] int32 text indices of each video's captions, -1 padded (M = most captions).

  Raises:
    RetrievalError: a video has no caption, or an index is out of range.
  """
  text_to_video = np.asarray(text_to_video)
  if text_to_video.ndim != 1 or not np.issubdtype(text_to_video.dtype, np.integer):
    raise RetrievalError(f"text_to_video must be a 1-D int array, got shape "
                         f"{text_to_video.shape} dtype {text_to_video.dtype}")
  bad = np.flatnonzero((text_to_video < 0) | (text_to_video >= num_videos))
  if bad.size:
    raise RetrievalError(f"text_to_video[{bad[0]}] = {text_to_video[bad[0]]} is not a video "
                         f"index in [0, {num_videos})")
  counts = np.bincount(text_to_video, minlength=num_videos)
  if (counts == 0).any():
    missing = np.flatnonzero(counts == 0)
    raise RetrievalError(f"video {missing[0]} ({missing.size} in total) has no caption; "
                         "video-to-text rank is undefined: drop such videos from the split")
  order = np.argsort(text_to_video, kind="stable")
  slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
  table = np.full((num_videos, counts.max()), -1, np.int32)
  table[text_to_video[order], slot] = order
  return table


def retrieval_metrics(similarity_matrix: np.ndarray, text_to_video: np.ndarray,
                      ties: str = "pessimistic",
                      v2t_protocol: str = "best_caption") -> Dict[str, float]:
  """Retrieval metrics in both directions from a dense similarity matrix.

  Args:
    similarity_matrix: [num_texts, num_videos] float, higher = more similar.
    text_to_video: [num_texts] int, the video each text describes.
    ties: one of similarity.TIE_POLICIES.
    v2t_protocol: one of V2T_PROTOCOLS (module docstring).

  Returns:
    {"t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "t2v/MnR", and the same for "v2t/"}.
  """
  sims = np.asarray(similarity_matrix, np.float64)  # exact for float32 input; ints allowed
  if sims.ndim != 2 or sims.shape[0] != np.shape(text_to_video)[0]:
    raise RetrievalError(f"similarity_matrix has shape {sims.shape}; expected "
                         f"[num_texts={np.shape(text_to_video)[0]}, num_videos]")
  if v2t_protocol not in V2T_PROTOCOLS:
    raise RetrievalError(f"v2t_protocol={v2t_protocol!r} is not one of {V2T_PROTOCOLS}")
  captions = captions_per_video(text_to_video, sims.shape[1])
  t2v = similarity.ranks_from_counts(
      *similarity.dense_target_counts(sims, text_to_video), ties)
  if v2t_protocol == "best_caption":
    v2t_counts = similarity.dense_target_counts(sims.T, captions)
  else:
    caption_sets = np.full((sims.shape[1], sims.shape[1]), -np.inf, sims.dtype)
    np.maximum.at(caption_sets, np.asarray(text_to_video), sims)  # [caption set, video]
    v2t_counts = similarity.dense_target_counts(caption_sets.T, np.arange(sims.shape[1]))
  v2t = similarity.ranks_from_counts(*v2t_counts, ties)
  return {**rank_metrics(t2v, "t2v"), **rank_metrics(v2t, "v2t")}


def retrieval_metrics_from_embeddings(text_embeddings: np.ndarray, video_embeddings: np.ndarray,
                                      text_to_video: np.ndarray, ties: str = "pessimistic",
                                      chunk: int = 4096,
                                      query_chunk: int = 1024) -> Dict[str, float]:
  """`retrieval_metrics` for dot-product similarity, streamed: no [texts, videos] matrix.

  Only the "best_caption" video-to-text protocol. Embeddings are used as given: L2-normalise them
  first for cosine similarity (dual encoders here already return normalised embeddings).

  Args:
    text_embeddings: [num_texts, D] float.
    video_embeddings: [num_videos, D] float.
    text_to_video: [num_texts] int, the video each text describes.
    ties: one of similarity.TIE_POLICIES.
    chunk: keys per block of the streamed search.
    query_chunk: queries per block.

  Returns:
    The same keys as `retrieval_metrics`.
  """
  if np.shape(text_embeddings)[0] != np.shape(text_to_video)[0]:
    raise RetrievalError(f"{np.shape(text_embeddings)[0]} text embeddings but "
                         f"{np.shape(text_to_video)[0]} entries in text_to_video")
  captions = captions_per_video(text_to_video, np.shape(video_embeddings)[0])
  kwargs = dict(chunk=chunk, query_chunk=query_chunk, ties=ties)
  t2v = similarity.ranks_of_targets(text_embeddings, video_embeddings, text_to_video, **kwargs)
  v2t = similarity.ranks_of_targets(video_embeddings, text_embeddings, captions, **kwargs)
  return {**rank_metrics(t2v, "t2v"), **rank_metrics(v2t, "v2t")}
