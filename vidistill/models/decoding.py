"""Autoregressive decoding as pure functions over a next-token callback and a cache (t5x style).

A model plugs in through `tokens_to_logits(state: DecodingState) -> (logits [N, V], cache)`;
nothing here knows what a transformer is, so every search can be tested on a hand-written callback.
The callback gets the whole `DecodingState`: a cached model reads `cur_token` and `cache`, a
full-recompute reference reads `sequences`.

Two state pytrees travel with the rows (N = batch * beams or batch * samples, row b*K + k):
- `cache`: rewritten each step and, in beam search, reordered with the surviving beams;
- `static`: constant per row (the encoder's cross-attention keys/values, its mask), expanded to
  the N rows once and never reordered, since beams of one example share it.
Every leaf of both has the row as leading axis.

All loops are `lax.while_loop`s; wrap callers in `jax.jit` (the model's `predict_batch` does).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from vidistill.models import losses
from vidistill.models.t5 import EOS_ID, PAD_ID, START_ID, shift_right

Array = jax.Array
# Finite "minus infinity": sums and divisions of it stay finite (no inf - inf = NaN).
NEG_INF = -1.0e7


class DecodingState(NamedTuple):
  step: Array  # [] int32: the position being predicted now
  cur_token: Array  # [N] int32: decoder input at `step` (START_ID at 0, else token at step-1)
  sequences: Array  # [N, max_len] int32: tokens of positions < step; PAD_ID from `step` on
  cache: Any  # [N, ...] leaves, returned updated by the callback
  static: Any  # [N, ...] leaves, read only


TokensToLogits = Callable[[DecodingState], tuple[Array, Any]]


def expand_rows(tree: Any, k: int) -> Any:
  """Repeats every leaf's leading axis k times: `[B, ...]` -> `[B*k, ...]` (row b*k + j)."""
  return jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), tree)


def length_penalty(length: Array, alpha: float) -> Array:
  """GNMT length normalisation `((5 + length) / 6) ** alpha` (Wu et al. 2016, as T5 uses it)."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _filter_top_k(logits: Array, k: int) -> Array:
  kth = jax.lax.top_k(logits, k)[0][..., -1:]
  return jnp.where(logits >= kth, logits, NEG_INF)


def _filter_top_p(logits: Array, p: float) -> Array:
  """Nucleus: keeps the smallest set of most likely tokens whose probability reaches `p`."""
  sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  # A token is kept if the mass strictly before it is < p, so the most likely is always kept.
  keep = (jnp.cumsum(probs, axis=-1) - probs) < p
  threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits >= threshold, logits, NEG_INF)


def sample(tokens_to_logits: TokensToLogits, *, batch_size: int, max_len: int,
           cache: Any = (), static: Any = (), rng: Array | None = None,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           num_decodes: int = 1, eos_id: int = EOS_ID, start_id: int = START_ID
           ) -> tuple[Array, Array]:
  """Temperature / top-k / top-p sampling; `temperature == 0` is greedy (argmax, no rng).

  `cache` and `static` have `batch_size` rows and are expanded to `batch_size * num_decodes`.
  Returns `(sequences [B, num_decodes, max_len] int32, log_probs [B, num_decodes] float32)`:
  tokens up to and including EOS, then PAD_ID; log_probs is the model's (untempered, unfiltered)
  log-likelihood of those tokens. Step t draws with `fold_in(rng, t)`, so results are a function
  of `rng` alone.

  Loop invariants: `sequences[:, t]` for t < step are final; a finished row only appends PAD_ID
  and its log-prob no longer changes; the loop stops when every row has emitted EOS.
  """
  greedy = temperature == 0.0
  if not greedy and rng is None:
    raise ValueError("sample(): temperature > 0 needs an rng key (or temperature=0 for greedy)")
  n = batch_size * num_decodes
  cache, static = expand_rows(cache, num_decodes), expand_rows(static, num_decodes)

  def cond(carry):
    step, _, _, _, finished, _ = carry
    return (step < max_len) & ~jnp.all(finished)

  def body(carry):
    step, cur, seqs, cache, finished, log_prob = carry
    logits, cache = tokens_to_logits(DecodingState(step, cur, seqs, cache, static))
    logits = jnp.asarray(logits, jnp.float32)
    if greedy:
      nxt = jnp.argmax(logits, axis=-1)
    else:
      filtered = logits / temperature
      if top_k:
        filtered = _filter_top_k(filtered, top_k)
      if top_p < 1.0:
        filtered = _filter_top_p(filtered, top_p)
      nxt = jax.random.categorical(jax.random.fold_in(rng, step), filtered, axis=-1)
    nxt = jnp.where(finished, PAD_ID, nxt).astype(jnp.int32)
    token_lp = jnp.take_along_axis(jax.nn.log_softmax(logits), nxt[:, None], axis=-1)[:, 0]
    log_prob = log_prob + jnp.where(finished, 0.0, token_lp)
    seqs = jax.lax.dynamic_update_slice(seqs, nxt[:, None], (0, step))
    return step + 1, nxt, seqs, cache, finished | (nxt == eos_id), log_prob

  carry = (jnp.array(0, jnp.int32), jnp.full((n,), start_id, jnp.int32),
           jnp.full((n, max_len), PAD_ID, jnp.int32), cache, jnp.zeros((n,), bool),
           jnp.zeros((n,), jnp.float32))
  _, _, seqs, _, _, log_prob = jax.lax.while_loop(cond, body, carry)
  return (seqs.reshape(batch_size, num_decodes, max_len),
          log_prob.reshape(batch_size, num_decodes))


def greedy(tokens_to_logits: TokensToLogits, *, batch_size: int, max_len: int,
           cache: Any = (), static: Any = (), eos_id: int = EOS_ID, start_id: int = START_ID
           ) -> tuple[Array, Array]:
  """Argmax decoding: `(sequences [B, max_len], log_probs [B])`."""
  seqs, log_prob = sample(tokens_to_logits, batch_size=batch_size, max_len=max_len, cache=cache,
                          static=static, temperature=0.0, eos_id=eos_id, start_id=start_id)
  return seqs[:, 0], log_prob[:, 0]


def beam_search(tokens_to_logits: TokensToLogits, *, batch_size: int, max_len: int,
                beam_size: int, alpha: float = 0.6, cache: Any = (), static: Any = (),
                eos_id: int = EOS_ID, start_id: int = START_ID) -> tuple[Array, Array]:
  """Beam search with length penalty `((5 + len) / 6) ** alpha`, len counting the EOS.

  Returns `(sequences [B, beam_size, max_len], scores [B, beam_size])`, best first; a score is the
  sequence log-likelihood divided by the length penalty. Hypotheses still alive at `max_len` are
  finished there.

  Invariants kept by each step: `alive_lp` and `finished_scores` are sorted descending per
  example; alive rows never end in EOS; the `2 * beam_size` candidates hold at most `beam_size`
  EOS tokens (one per beam), so at least `beam_size` of them can stay alive. The loop stops early
  only when no alive hypothesis can still beat the worst finished one: its log-likelihood can only
  fall and, for alpha >= 0, its penalty is largest at `max_len`, so early stopping never changes
  the result.
  """
  b, w = batch_size, beam_size
  cache, static = expand_rows(cache, w), expand_rows(static, w)

  def cond(carry):
    step, _, alive_lp, _, finished_scores, _ = carry
    best_possible = alive_lp[:, 0] / length_penalty(max_len, alpha)
    return (step < max_len) & ~jnp.all(finished_scores[:, -1] >= best_possible)

  def body(carry):
    step, alive_seqs, alive_lp, finished_seqs, finished_scores, cache = carry
    prev = jax.lax.dynamic_index_in_dim(alive_seqs, jnp.maximum(step - 1, 0), 2, keepdims=False)
    cur = jnp.where(step == 0, start_id, prev).reshape(b * w)
    logits, cache = tokens_to_logits(
        DecodingState(step, cur, alive_seqs.reshape(b * w, max_len), cache, static))
    vocab = logits.shape[-1]
    if vocab < 2 * w:
      raise ValueError(f"beam_search: vocabulary {vocab} must be >= 2 * beam_size = {2 * w}")
    log_probs = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32)).reshape(b, w, vocab)
    candidates = (log_probs + alive_lp[:, :, None]).reshape(b, w * vocab)
    top_lp, top_index = jax.lax.top_k(candidates, 2 * w)  # [B, 2W]
    top_beam, top_token = top_index // vocab, (top_index % vocab).astype(jnp.int32)
    top_seqs = jnp.take_along_axis(alive_seqs, top_beam[:, :, None], axis=1)
    top_seqs = jnp.where(jnp.arange(max_len) == step, top_token[:, :, None], top_seqs)
    is_eos = top_token == eos_id

    alive_lp, keep = jax.lax.top_k(jnp.where(is_eos, NEG_INF, top_lp), w)
    alive_seqs = jnp.take_along_axis(top_seqs, keep[:, :, None], axis=1)
    source_row = jnp.arange(b)[:, None] * w + jnp.take_along_axis(top_beam, keep, axis=1)
    cache = jax.tree.map(lambda x: x[source_row.reshape(-1)], cache)

    done = is_eos | (step == max_len - 1)
    new_scores = jnp.where(done, top_lp / length_penalty(step + 1, alpha), NEG_INF)
    finished_scores, keep = jax.lax.top_k(
        jnp.concatenate([finished_scores, new_scores], axis=1), w)
    finished_seqs = jnp.take_along_axis(
        jnp.concatenate([finished_seqs, top_seqs], axis=1), keep[:, :, None], axis=1)
    return step + 1, alive_seqs, alive_lp, finished_seqs, finished_scores, cache

  # Only beam 0 is live at first: the W beams start identical and must not be counted W times.
  alive_lp = jnp.tile(jnp.array([0.0] + [NEG_INF] * (w - 1), jnp.float32), (b, 1))
  zeros = jnp.full((b, w, max_len), PAD_ID, jnp.int32)
  carry = (jnp.array(0, jnp.int32), zeros, alive_lp, zeros,
           jnp.full((b, w), NEG_INF, jnp.float32), cache)
  _, _, _, finished_seqs, finished_scores, _ = jax.lax.while_loop(cond, body, carry)
  return finished_seqs, finished_scores


def score_candidates(logits_fn: Callable[[Any, Array], Array], static: Any,
                     candidates: Array, *, start_id: int = START_ID, pad_id: int = PAD_ID
                     ) -> tuple[Array, Array]:
  """Log-likelihood of given continuations, e.g. the answers of a multiple-choice question.

  Args:
    logits_fn: `(static [N, ...], decoder_input_tokens [N, L]) -> logits [N, L, V]`, the model's
      teacher-forced decoder.
    static: per-example state with `B` rows (the encoder output and mask): computed once per
      example and shared by its C candidates.
    candidates: `[B, C, L]` int32 target tokens, PAD_ID-padded.
  Returns:
    `(scores [B, C], token_scores [B, C, L])` float32: summed and per-token log p (0 at padding).
  """
  b, c, length = candidates.shape
  flat = candidates.reshape(b * c, length)
  logits = logits_fn(expand_rows(static, c), shift_right(flat, start_id))
  token_scores = losses.token_log_likelihood(logits, flat) * (flat != pad_id)
  return token_scores.sum(-1).reshape(b, c), token_scores.reshape(b, c, length)
