"""Chunked similarity search: top-k and the rank of the true item, without a [Q, K] matrix.

Both functions stream over key chunks with `jax.lax.scan` inside one jitted function per query
chunk, so score memory is O(query_chunk * chunk) however large Q and K are (a 1M x 1M search holds
one [1024, 4096] block at a time, next to the [K, D] embeddings themselves). Scores are dot
products in float32 at HIGHEST matmul precision (no bf16/tf32 passes on GPU/TPU), so they agree
with a float32 numpy reference. Inputs may be numpy or jax arrays; outputs are numpy.

Ranks are 1-based. The tie policy decides where the true item goes among keys with exactly its
score (`ranks_from_counts`):
  "pessimistic": after all of them (a constant similarity matrix scores R@1 = 0, never 100);
  "optimistic":  before all of them (CLIP4Clip's `compute_metrics`, Frozen-in-Time's t2v);
  "index":       among them by key index, as a stable descending argsort does;
  "average":     the mean of the two extremes (McSherry & Najork 2008; Frozen's v2t).
"""
import functools
from typing import Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

TIE_POLICIES = ("pessimistic", "optimistic", "index", "average")
_HIGHEST = jax.lax.Precision.HIGHEST

ArrayLike = Union[np.ndarray, jax.Array]


class SimilarityError(ValueError):
  """Bad shapes, indices or options for a similarity search."""


def check_ties(ties: str) -> None:
  if ties not in TIE_POLICIES:
    raise SimilarityError(f"ties={ties!r} is not one of {TIE_POLICIES}")


def ranks_from_counts(higher: np.ndarray, tied: np.ndarray, tied_before: np.ndarray,
                      ties: str) -> np.ndarray:
  """1-based ranks of the true items from comparison counts.

  Args:
    higher: [Q] int, keys scoring strictly above the best true key.
    tied: [Q] int, other keys (true or not) with exactly the best true key's score.
    tied_before: [Q] int, those of `tied` whose index is lower than the best true key's (the
      best true key is the lowest-index true key at the best score).
    ties: one of TIE_POLICIES (module docstring).

  Returns:
    [Q] float64 ranks (whole numbers except under "average").
  """
  check_ties(ties)
  higher = np.asarray(higher, np.float64)
  extra = {"pessimistic": tied, "optimistic": 0, "index": tied_before,
           "average": np.asarray(tied, np.float64) / 2}[ties]
  return 1.0 + higher + extra


def _as_targets(targets: ArrayLike, num_queries: int, num_keys: int) -> np.ndarray:
  """[Q] or [Q, M] (-1 = padding) int targets -> [Q, M] int32, validated."""
  targets = np.asarray(targets)
  if targets.ndim == 1:
    targets = targets[:, None]
  if targets.ndim != 2 or targets.shape[0] != num_queries:
    raise SimilarityError(f"targets has shape {targets.shape}; expected [{num_queries}] or "
                          f"[{num_queries}, M] key indices (-1 pads)")
  if not np.issubdtype(targets.dtype, np.integer):
    raise SimilarityError(f"targets must be integer key indices, got dtype {targets.dtype}")
  bad = np.argwhere((targets >= num_keys) | (targets < -1))
  if bad.size:
    q, m = bad[0]
    raise SimilarityError(f"targets[{q}, {m}] = {targets[q, m]} is not a key index in "
                          f"[0, {num_keys}) (use -1 only as padding)")
  empty = np.flatnonzero((targets < 0).all(axis=1))
  if empty.size:
    raise SimilarityError(f"query {empty[0]} has no target (all -1); "
                          f"{empty.size} queries without a target in total")
  return targets.astype(np.int32)


def dense_target_counts(scores: ArrayLike, targets: ArrayLike) -> Tuple[np.ndarray, ...]:
  """(higher, tied, tied_before) of `ranks_from_counts` from a full score matrix.

  Args:
    scores: [Q, K] float, higher is better.
    targets: [Q] or [Q, M] int key indices of the true items, -1 pads.
  """
  scores = np.asarray(scores)
  if scores.ndim != 2:
    raise SimilarityError(f"scores must be [Q, K], got shape {scores.shape}")
  if not np.isfinite(scores).all():
    raise SimilarityError("scores hold NaN or inf; ranks would be meaningless")
  targets = _as_targets(targets, *scores.shape)
  valid = targets >= 0
  target_scores = np.where(valid, np.take_along_axis(scores, np.maximum(targets, 0), 1), -np.inf)
  best_score = target_scores.max(axis=1)
  at_best = valid & (target_scores == best_score[:, None])
  best_index = np.where(at_best, targets, np.iinfo(np.int32).max).min(axis=1)
  equal = scores == best_score[:, None]
  higher = (scores > best_score[:, None]).sum(axis=1)
  tied = equal.sum(axis=1) - 1
  tied_before = (equal & (np.arange(scores.shape[1]) < best_index[:, None])).sum(axis=1)
  return higher, tied, tied_before


def _check_embeddings(queries: ArrayLike, keys: ArrayLike) -> None:
  if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
    raise SimilarityError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} must be "
                          "[Q, D] and [K, D] with the same D")
  if keys.shape[0] == 0 or queries.shape[0] == 0:
    raise SimilarityError("queries and keys must be non-empty")


def _padded_chunks(array: ArrayLike, chunk: int) -> Tuple[jax.Array, int]:
  """[N, D] -> ([ceil(N / c), c, D] float32 zero-padded, N), c = min(chunk, N)."""
  array = jnp.asarray(array, jnp.float32)
  if not jnp.isfinite(array).all():
    raise SimilarityError("embeddings hold NaN or inf; scores and ranks would be meaningless")
  n = array.shape[0]
  chunk = min(chunk, n)
  padded = -(-n // chunk) * chunk
  array = jnp.pad(array, ((0, padded - n), (0, 0)))
  return array.reshape(padded // chunk, chunk, array.shape[1]), n


def _block_scores(queries: jax.Array, keys: jax.Array) -> jax.Array:
  """[Qc, D] x [Kc, D] -> [Qc, Kc] float32: the one matmul every score here comes from."""
  return jnp.matmul(queries, keys.T, precision=_HIGHEST)


@functools.partial(jax.jit, static_argnames=("k",))
def _topk_query_chunk(queries: jax.Array, key_chunks: jax.Array, num_keys: jax.Array,
                      k: int) -> Tuple[jax.Array, jax.Array]:
  """Running top-k of one query chunk [Qc, D] over key chunks [n, Kc, D] (Kc >= k)."""
  chunk = key_chunks.shape[1]

  def chunk_topk(keys, offset):
    scores = _block_scores(queries, keys)
    index = offset + jnp.arange(chunk, dtype=jnp.int32)
    scores = jnp.where(index < num_keys, scores, -jnp.inf)
    values, local = jax.lax.top_k(scores, k)
    return values, index[local]

  def step(carry, xs):
    keys, offset = xs
    values, index = chunk_topk(keys, offset)
    # Running entries come first and hold lower key indices, and top_k puts the lower position
    # first among equal values: ties resolve by key index, as in a dense stable sort.
    values = jnp.concatenate([carry[0], values], axis=1)
    index = jnp.concatenate([carry[1], index], axis=1)
    values, pick = jax.lax.top_k(values, k)
    return (values, jnp.take_along_axis(index, pick, axis=1)), None

  offsets = jnp.arange(key_chunks.shape[0], dtype=jnp.int32) * chunk
  first = chunk_topk(key_chunks[0], offsets[0])
  (values, index), _ = jax.lax.scan(step, first, (key_chunks[1:], offsets[1:]))
  return values, index


def topk_similarity(queries: ArrayLike, keys: ArrayLike, k: int, chunk: int = 4096,
                    query_chunk: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
  """The k best keys of every query by dot product, streaming over chunks.

  Args:
    queries: [Q, D] float (normalise first for cosine similarity).
    keys: [K, D] float.
    k: how many keys per query, 1 <= k <= K.
    chunk: keys per block (raised to k if smaller).
    query_chunk: queries per block.

  Returns:
    (scores [Q, k] float32 descending, indices [Q, k] int32); equal scores in key-index order.
  """
  _check_embeddings(queries, keys)
  if not 1 <= k <= keys.shape[0]:
    raise SimilarityError(f"k={k} must be in [1, {keys.shape[0]}] (the number of keys)")
  key_chunks, num_keys = _padded_chunks(keys, max(chunk, k))
  query_chunks, num_queries = _padded_chunks(queries, query_chunk)
  results = [_topk_query_chunk(q, key_chunks, jnp.int32(num_keys), k) for q in query_chunks]
  values = np.concatenate([np.asarray(v) for v, _ in results])[:num_queries]
  index = np.concatenate([np.asarray(i) for _, i in results])[:num_queries]
  return values, index


@jax.jit
def _count_query_chunk(queries, key_chunks, num_keys, targets, best_score, best_index):
  """Comparison counts of one query chunk against all key chunks.

  Also returns the score each target got inside the chunked matmul ([Qc, M]), so the caller can
  confirm `best_score` matches it bit for bit.
  """
  chunk = key_chunks.shape[1]
  zeros = jnp.zeros(queries.shape[0], jnp.int32)

  def step(carry, xs):
    higher, equal, equal_before, seen = carry
    keys, offset = xs
    scores = _block_scores(queries, keys)
    index = offset + jnp.arange(chunk, dtype=jnp.int32)
    valid = index < num_keys
    above = valid & (scores > best_score[:, None])
    same = valid & (scores == best_score[:, None])
    higher += above.sum(axis=1, dtype=jnp.int32)
    equal += same.sum(axis=1, dtype=jnp.int32)
    equal_before += (same & (index < best_index[:, None])).sum(axis=1, dtype=jnp.int32)
    local = targets - offset
    inside = (targets >= 0) & (local >= 0) & (local < chunk)
    got = jnp.take_along_axis(scores, jnp.clip(local, 0, chunk - 1), axis=1)
    return (higher, equal, equal_before, jnp.where(inside, got, seen)), None

  offsets = jnp.arange(key_chunks.shape[0], dtype=jnp.int32) * chunk
  init = (zeros, zeros, zeros, jnp.full(targets.shape, -jnp.inf, jnp.float32))
  (higher, equal, equal_before, seen), _ = jax.lax.scan(step, init, (key_chunks, offsets))
  return higher, equal - 1, equal_before, seen


@jax.jit
def _best_of(target_scores, targets):
  best = target_scores.max(axis=1)
  at_best = (targets >= 0) & (target_scores == best[:, None])
  return best, jnp.where(at_best, targets, jnp.iinfo(jnp.int32).max).min(axis=1)


@jax.jit
def _target_scores(queries, key_chunks, targets):
  """Best true score and index per query, computed by `_block_scores` on blocks of true keys.

  Blocks of the same [Kc, D] shape as the key chunks run the same kernel, which (on the backends
  tried) gives every entry the same bits as the full scan; `ranks_of_targets` checks this.
  """
  chunk, dim = key_chunks.shape[1:]
  flat = jnp.maximum(targets, 0).reshape(-1)
  blocks = -(-flat.shape[0] // chunk)
  flat = jnp.pad(flat, (0, blocks * chunk - flat.shape[0]))
  keys = key_chunks.reshape(-1, dim)[flat].reshape(blocks, chunk, dim)
  scores = jax.lax.map(lambda k: _block_scores(queries, k), keys)  # [blocks, Qc, Kc]
  scores = scores.transpose(1, 0, 2).reshape(queries.shape[0], -1)
  column = jnp.arange(targets.size, dtype=jnp.int32).reshape(targets.shape)
  target_scores = jnp.take_along_axis(scores, column, axis=1)
  return _best_of(jnp.where(targets >= 0, target_scores, -jnp.inf), targets)


def ranks_of_targets(queries: ArrayLike, keys: ArrayLike, targets: ArrayLike,
                     chunk: int = 4096, query_chunk: int = 1024,
                     ties: str = "pessimistic") -> np.ndarray:
  """Rank of the true key(s) of every query among all keys, without a [Q, K] matrix.

  With several true keys per query the rank is that of the best-scoring one (the best rank of any
  of them), counting the other true keys like any other key.

  Counting needs the true key's score exactly as the chunked matmul computes it (a value one ulp
  off would turn ties into wins, and a collapsed model's R@1 from 0 into 100). `_target_scores`
  computes it first with the same block matmul; the scan records the value it sees, and a query
  chunk where the two differ is counted again with the recorded values, so the result is exact
  even on a backend whose matmul bits depend on an entry's position.

  Args:
    queries: [Q, D] float.
    keys: [K, D] float.
    targets: [Q] int or [Q, M] int (-1 pads) indices into keys.
    chunk: keys per block.
    query_chunk: queries per block.
    ties: one of TIE_POLICIES (module docstring).

  Returns:
    [Q] float64 1-based ranks.
  """
  check_ties(ties)
  _check_embeddings(queries, keys)
  targets = _as_targets(targets, queries.shape[0], keys.shape[0])
  key_chunks, num_keys = _padded_chunks(keys, chunk)
  query_chunks, num_queries = _padded_chunks(queries, query_chunk)
  num_keys = jnp.int32(num_keys)
  padded_targets = np.zeros(query_chunks.shape[:2] + targets.shape[1:], np.int32)
  padded_targets.reshape(-1, targets.shape[1])[:num_queries] = targets
  counts = []
  for q, t in zip(query_chunks, padded_targets):
    best, best_index = _target_scores(q, key_chunks, t)
    higher, tied, tied_before, seen = _count_query_chunk(q, key_chunks, num_keys, t, best,
                                                         best_index)
    seen_best, seen_index = _best_of(seen, t)
    if not (np.array_equal(seen_best, best) and np.array_equal(seen_index, best_index)):
      higher, tied, tied_before, _ = _count_query_chunk(q, key_chunks, num_keys, t, seen_best,
                                                        seen_index)
    counts.append((higher, tied, tied_before))
  higher, tied, tied_before = (np.concatenate([np.asarray(c[i]) for c in counts])[:num_queries]
                               for i in range(3))
  return ranks_from_counts(higher, tied, tied_before, ties)
