"""Tests for vidistill/eval/metrics/retrieval.py against naive loops written from the protocols."""
import numpy as np
import pytest

from vidistill.eval.metrics import retrieval
from vidistill.eval.metrics import similarity


def _rank_in_row(row, target, ties):
  """1-based rank of row[target] among the row's entries under a tie policy (naive)."""
  above = sum(1 for s in row if s > row[target])
  tied = sum(1 for s in row if s == row[target]) - 1
  before = sum(1 for j, s in enumerate(row) if s == row[target] and j < target)
  return 1 + above + {"optimistic": 0, "pessimistic": tied, "index": before,
                      "average": tied / 2}[ties]


def _reference_metrics(sims, text_to_video, ties, v2t_protocol="best_caption"):
  num_texts, num_videos = sims.shape
  t2v = [_rank_in_row(sims[t], text_to_video[t], ties) for t in range(num_texts)]
  v2t = []
  for v in range(num_videos):
    captions = [t for t in range(num_texts) if text_to_video[t] == v]
    if v2t_protocol == "best_caption":
      v2t.append(min(_rank_in_row(sims[:, v], c, ties) for c in captions))
    else:  # CLIP4Clip: each caption set scored by its best caption for this video.
      sets = [max(sims[t, v] for t in range(num_texts) if text_to_video[t] == g)
              for g in range(num_videos)]
      v2t.append(_rank_in_row(sets, v, ties))
  out = {}
  for prefix, ranks in (("t2v", t2v), ("v2t", v2t)):
    ranks = np.array(ranks, np.float64)
    for k in (1, 5, 10):
      out[f"{prefix}/R@{k}"] = 100.0 * np.mean(ranks <= k)
    out[f"{prefix}/MdR"] = np.median(ranks)
    out[f"{prefix}/MnR"] = np.mean(ranks)
  return out


def _assert_same(got, expected):
  assert set(got) == set(expected)
  for name in expected:
    assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def _tied_sims(rng, num_texts, num_videos):
  # Rounded scores: many exact ties, the case where protocols differ.
  return np.round(rng.normal(size=(num_texts, num_videos)), 1)


@pytest.mark.parametrize("ties", similarity.TIE_POLICIES)
def test_one_caption_per_video(ties):
  rng = np.random.default_rng(0)
  sims = _tied_sims(rng, 40, 40) + 1.5 * np.eye(40)
  text_to_video = np.arange(40)
  _assert_same(retrieval.retrieval_metrics(sims, text_to_video, ties=ties),
               _reference_metrics(sims, text_to_video, ties))


@pytest.mark.parametrize("ties", similarity.TIE_POLICIES)
@pytest.mark.parametrize("v2t_protocol", retrieval.V2T_PROTOCOLS)
def test_several_captions_per_video(ties, v2t_protocol):
  rng = np.random.default_rng(1)
  text_to_video = np.concatenate([np.arange(30), rng.integers(0, 30, 70)])
  rng.shuffle(text_to_video)
  sims = _tied_sims(rng, 100, 30)
  sims[np.arange(100), text_to_video] += 1.0
  _assert_same(
      retrieval.retrieval_metrics(sims, text_to_video, ties=ties, v2t_protocol=v2t_protocol),
      _reference_metrics(sims, text_to_video, ties, v2t_protocol))


def test_clip4clip_diagonal_protocol():
  # CLIP4Clip's compute_metrics: sort each row descending and take the first position holding
  # the diagonal value, i.e. the optimistic rank, on a square matrix.
  rng = np.random.default_rng(2)
  sims = rng.normal(size=(25, 25))
  first_position = [int(np.flatnonzero(np.sort(-row) == -row[i])[0]) for i, row in enumerate(sims)]
  got = retrieval.retrieval_metrics(sims, np.arange(25), ties="optimistic")
  assert got["t2v/R@1"] == pytest.approx(100 * np.mean(np.array(first_position) == 0))
  assert got["t2v/MnR"] == pytest.approx(np.mean(first_position) + 1)
  assert got["t2v/MdR"] == pytest.approx(np.median(first_position) + 1)


def test_constant_similarity_tie_policies():
  sims = np.zeros((10, 10))
  pessimistic = retrieval.retrieval_metrics(sims, np.arange(10))
  assert pessimistic["t2v/R@1"] == 0 and pessimistic["t2v/MdR"] == 10
  optimistic = retrieval.retrieval_metrics(sims, np.arange(10), ties="optimistic")
  assert optimistic["t2v/R@1"] == 100 and optimistic["v2t/MnR"] == 1


def test_rank_metrics_by_hand():
  got = retrieval.rank_metrics(np.array([1, 2, 6, 11]), "x")
  assert got == {"x/R@1": 25.0, "x/R@5": 50.0, "x/R@10": 75.0, "x/MdR": 4.0, "x/MnR": 5.0}


def test_from_embeddings_matches_dense():
  rng = np.random.default_rng(3)
  videos = rng.integers(-2, 3, (50, 8)).astype(np.float32)
  text_to_video = np.concatenate([np.arange(50), rng.integers(0, 50, 80)])
  texts = videos[text_to_video] + rng.integers(-2, 3, (130, 8)).astype(np.float32)
  texts[:5] = texts[5]  # duplicate texts tie in video-to-text
  for ties in ("pessimistic", "index"):
    _assert_same(
        retrieval.retrieval_metrics_from_embeddings(texts, videos, text_to_video, ties=ties,
                                                    chunk=32, query_chunk=16),
        retrieval.retrieval_metrics(texts @ videos.T, text_to_video, ties=ties))


def test_captions_per_video_table():
  table = retrieval.captions_per_video(np.array([1, 0, 1, 2, 1]), 3)
  np.testing.assert_array_equal(table, [[1, -1, -1], [0, 2, 4], [3, -1, -1]])


def test_errors_name_the_problem():
  sims = np.zeros((3, 3))
  with pytest.raises(retrieval.RetrievalError, match="video 2"):
    retrieval.retrieval_metrics(sims, np.array([0, 1, 1]))
  with pytest.raises(retrieval.RetrievalError, match=r"text_to_video\[1\] = 3"):
    retrieval.retrieval_metrics(sims, np.array([0, 3, 2]))
  with pytest.raises(retrieval.RetrievalError, match="shape"):
    retrieval.retrieval_metrics(np.zeros((4, 3)), np.array([0, 1, 2]))
  with pytest.raises(retrieval.RetrievalError, match="v2t_protocol"):
    retrieval.retrieval_metrics(sims, np.arange(3), v2t_protocol="mean")
  with pytest.raises(similarity.SimilarityError, match="ties"):
    retrieval.retrieval_metrics(sims, np.arange(3), ties="lucky")
