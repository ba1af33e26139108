"""Tests for vidistill/eval/metrics/similarity.py against dense, per-query reference loops.

Embeddings hold small integers so every dot product is exact in float32: the chunked matmul, the
dense numpy matmul and the reference agree bit for bit, and planted ties are real ties.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.eval.metrics import similarity


def _int_embeddings(rng, n, dim=8):
  return rng.integers(-2, 3, (n, dim)).astype(np.float32)


def _reference_rank(scores, targets, ties):
  """Best rank over the true keys of one query, each ranked on its own (naive loop)."""
  order = np.argsort(-scores, kind="stable")  # ties in key-index order
  ranks = []
  for t in targets:
    if t < 0:
      continue
    above = int(np.sum(scores > scores[t]))
    tied_others = int(np.sum(scores == scores[t])) - 1
    ranks.append({"optimistic": 1 + above,
                  "pessimistic": 1 + above + tied_others,
                  "index": 1 + int(np.flatnonzero(order == t)[0]),
                  "average": 1 + above + tied_others / 2}[ties])
  return min(ranks)


def _reference_ranks(queries, keys, targets, ties):
  scores = queries.astype(np.float64) @ keys.astype(np.float64).T
  targets = np.asarray(targets).reshape(len(queries), -1)
  return np.array([_reference_rank(s, t, ties) for s, t in zip(scores, targets)])


@pytest.fixture(name="data")
def _data():
  rng = np.random.default_rng(0)
  queries, keys = _int_embeddings(rng, 150), _int_embeddings(rng, 700)
  keys[300:310] = keys[5]  # exact duplicates: ties with the true key
  targets = rng.integers(0, 700, 150)
  targets[:20] = 305
  return queries, keys, targets


@pytest.mark.parametrize("ties", similarity.TIE_POLICIES)
@pytest.mark.parametrize("chunk,query_chunk", [(128, 64), (700, 150), (4096, 1024), (99, 7)])
def test_ranks_of_targets_match_reference(data, ties, chunk, query_chunk):
  queries, keys, targets = data
  got = similarity.ranks_of_targets(queries, keys, targets, chunk=chunk, query_chunk=query_chunk,
                                    ties=ties)
  np.testing.assert_array_equal(got, _reference_ranks(queries, keys, targets, ties))


@pytest.mark.parametrize("ties", similarity.TIE_POLICIES)
def test_several_targets_per_query(ties):
  rng = np.random.default_rng(1)
  queries, keys = _int_embeddings(rng, 60), _int_embeddings(rng, 300)
  keys[200:205] = keys[3]
  targets = rng.integers(0, 300, (60, 4))
  targets[rng.random((60, 4)) < 0.3] = -1
  targets[:, 0] = rng.integers(0, 300, 60)  # at least one real target per query
  targets[:10, 1] = 3
  targets[:10, 2] = 202  # two true keys tied with each other
  got = similarity.ranks_of_targets(queries, keys, targets, chunk=64, query_chunk=16, ties=ties)
  np.testing.assert_array_equal(got, _reference_ranks(queries, keys, targets, ties))


def test_dense_counts_give_the_same_ranks(data):
  queries, keys, targets = data
  for ties in similarity.TIE_POLICIES:
    dense = similarity.ranks_from_counts(
        *similarity.dense_target_counts(queries @ keys.T, targets), ties)
    np.testing.assert_array_equal(dense, _reference_ranks(queries, keys, targets, ties))


def test_collapsed_embeddings_with_float_values():
  # A collapsed encoder: every key the same non-integer vector. All scores tie exactly, whatever
  # rounding the matmul does, so pessimistic ranks are K and optimistic ranks 1.
  rng = np.random.default_rng(2)
  queries = rng.normal(size=(50, 32)).astype(np.float32)
  keys = np.tile(rng.normal(size=(1, 32)).astype(np.float32), (333, 1))
  targets = rng.integers(0, 333, 50)
  kwargs = dict(chunk=100, query_chunk=16)
  np.testing.assert_array_equal(
      similarity.ranks_of_targets(queries, keys, targets, ties="pessimistic", **kwargs), 333)
  np.testing.assert_array_equal(
      similarity.ranks_of_targets(queries, keys, targets, ties="optimistic", **kwargs), 1)
  np.testing.assert_array_equal(
      similarity.ranks_of_targets(queries, keys, targets, ties="index", **kwargs), targets + 1)


def test_recount_when_the_first_guess_of_the_target_score_is_off(data, monkeypatch):
  # Force the fallback: the guessed best score is one ulp high, so the scan sees a different value
  # and must count again with the one it saw.
  queries, keys, targets = data
  original = similarity._target_scores

  def off_by_one_ulp(*args):
    best, best_index = original(*args)
    return jnp.nextafter(best, jnp.inf), best_index

  monkeypatch.setattr(similarity, "_target_scores", off_by_one_ulp)
  got = similarity.ranks_of_targets(queries, keys, targets, chunk=128, query_chunk=64)
  np.testing.assert_array_equal(got, _reference_ranks(queries, keys, targets, "pessimistic"))


def test_jax_inputs(data):
  queries, keys, targets = data
  got = similarity.ranks_of_targets(jnp.asarray(queries), jnp.asarray(keys), jnp.asarray(targets),
                                    chunk=256)
  np.testing.assert_array_equal(got, _reference_ranks(queries, keys, targets, "pessimistic"))


@pytest.mark.parametrize("k,chunk,query_chunk", [(10, 128, 64), (1, 700, 150), (50, 16, 33),
                                                 (700, 256, 64)])
def test_topk_matches_dense_stable_sort(data, k, chunk, query_chunk):
  queries, keys, _ = data
  values, index = similarity.topk_similarity(queries, keys, k, chunk=chunk,
                                             query_chunk=query_chunk)
  dense = queries.astype(np.float64) @ keys.astype(np.float64).T
  order = np.argsort(-dense, axis=1, kind="stable")[:, :k]
  np.testing.assert_array_equal(index, order)
  np.testing.assert_array_equal(values, np.take_along_axis(dense, order, axis=1))
  assert values.dtype == np.float32 and index.dtype == np.int32


def test_topk_float_embeddings_agree_with_numpy():
  rng = np.random.default_rng(3)
  queries = rng.normal(size=(40, 16)).astype(np.float32)
  keys = rng.normal(size=(500, 16)).astype(np.float32)
  values, index = similarity.topk_similarity(queries, keys, 5, chunk=64)
  dense = queries @ keys.T
  np.testing.assert_array_equal(index, np.argsort(-dense, axis=1)[:, :5])
  np.testing.assert_allclose(values, np.sort(dense, axis=1)[:, ::-1][:, :5], rtol=1e-5)


def test_ranks_from_counts_by_hand():
  # 3 keys above, 4 others tied, 1 of them before the true key by index.
  args = (np.array([3]), np.array([4]), np.array([1]))
  assert similarity.ranks_from_counts(*args, "optimistic")[0] == 4
  assert similarity.ranks_from_counts(*args, "pessimistic")[0] == 8
  assert similarity.ranks_from_counts(*args, "index")[0] == 5
  assert similarity.ranks_from_counts(*args, "average")[0] == 6


@pytest.mark.parametrize("targets,match", [
    (np.array([0, 5]), r"targets\[1, 0\] = 5"),
    (np.array([[0, -1], [-1, -1]]), "query 1 has no target"),
    (np.array([0.0, 1.0]), "integer"),
    (np.array([0, 1, 2]), "shape"),
])
def test_bad_targets_raise(targets, match):
  queries, keys = np.ones((2, 3), np.float32), np.ones((5, 3), np.float32)
  with pytest.raises(similarity.SimilarityError, match=match):
    similarity.ranks_of_targets(queries, keys, targets)


def test_bad_arguments_raise():
  queries, keys = np.ones((2, 3), np.float32), np.ones((5, 3), np.float32)
  with pytest.raises(similarity.SimilarityError, match="k=6"):
    similarity.topk_similarity(queries, keys, 6)
  with pytest.raises(similarity.SimilarityError, match="same D"):
    similarity.topk_similarity(queries, np.ones((5, 4)), 1)
  with pytest.raises(similarity.SimilarityError, match="ties="):
    similarity.ranks_of_targets(queries, keys, np.array([0, 1]), ties="random")
  with pytest.raises(similarity.SimilarityError, match="NaN"):
    similarity.ranks_of_targets(queries, np.full((5, 3), np.nan), np.array([0, 1]))
