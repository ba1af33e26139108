"""Tests for vidistill/models/decoding.py: hand-written callbacks against plain-Python reference
searches, then a random tiny T5 whose KV-cached decode must equal a full-recompute decode."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidistill.models import decoding, t5
from t5_testing import random_params

V, L, EOS = 7, 6, 1


def _tables(b, seed=0):
  """Per-example logits tables [B, L, V(cur token), V]; EOS grows likelier with the step."""
  rng = np.random.default_rng(seed)
  tables = rng.normal(size=(b, L, V, V)) * 2.0
  tables[..., EOS] += np.linspace(-2.0, 2.0, L)[None, :, None]
  return tables.astype(np.float32)


def _toy_fn(state):
  """Logits from (example's table, step, current token) plus a bonus picked by the cache, which
  holds the sum of the decoder inputs seen so far: checks that beam search reorders the cache."""
  rows = jnp.arange(state.cur_token.shape[0])
  logits = state.static["table"][rows, state.step, state.cur_token]
  logits = logits + 0.5 * jax.nn.one_hot(state.cache["sum"] % V, V)
  return logits, {"sum": state.cache["sum"] + state.cur_token}


def _toy_logits(table, toks):
  """Reference for `_toy_fn` from the tokens so far (decoder inputs are [0] + toks)."""
  step = len(toks)
  cur = toks[-1] if toks else 0
  logits = table[step, cur].astype(np.float64).copy()
  logits[sum(toks[:-1]) % V] += 0.5
  return logits


def _log_softmax(x):
  x = np.asarray(x, np.float64)
  m = x.max()
  return x - m - np.log(np.exp(x - m).sum())


def _toy_state(b, seed=0):
  return dict(cache={"sum": jnp.zeros((b,), jnp.int32)},
              static={"table": jnp.asarray(_tables(b, seed))})


def _ref_greedy(table):
  toks, lp = [], 0.0
  for _ in range(L):
    logp = _log_softmax(_toy_logits(table, toks))
    tok = int(np.argmax(logp))
    toks.append(tok)
    lp += logp[tok]
    if tok == EOS:
      break
  return toks + [0] * (L - len(toks)), lp


def _ref_beam(table, w, alpha):
  """Textbook beam search: top 2W expansions; EOS ones (and all at the last step) finish."""
  penalty = lambda n: ((5.0 + n) / 6.0) ** alpha  # noqa: E731
  alive, finished = [((), 0.0)], []
  for step in range(L):
    cands = []
    for toks, lp in alive:
      logp = _log_softmax(_toy_logits(table, list(toks)))
      cands += [(lp + logp[v], toks + (v,)) for v in range(V)]
    cands = sorted(cands, key=lambda c: -c[0])[:2 * w]
    finished += [(lp / penalty(step + 1), toks) for lp, toks in cands
                 if toks[-1] == EOS or step == L - 1]
    alive = [(toks, lp) for lp, toks in cands if toks[-1] != EOS][:w]
  finished = sorted(finished, key=lambda f: -f[0])[:w]
  return ([list(t) + [0] * (L - len(t)) for _, t in finished], [s for s, _ in finished])


def test_greedy_matches_reference():
  b = 3
  seqs, lp = jax.jit(functools.partial(decoding.greedy, _toy_fn, batch_size=b, max_len=L))(
      **_toy_state(b))
  tables = _tables(b)
  for i in range(b):
    want, want_lp = _ref_greedy(tables[i])
    np.testing.assert_array_equal(seqs[i], want)
    np.testing.assert_allclose(lp[i], want_lp, rtol=1e-5)
  assert (np.asarray(seqs) == EOS).any()  # the tables do end some sequences early


@pytest.mark.parametrize("alpha", [0.0, 0.6, 3.0])
def test_beam_search_matches_reference(alpha):
  b, w = 4, 3
  seqs, scores = jax.jit(functools.partial(
      decoding.beam_search, _toy_fn, batch_size=b, max_len=L, beam_size=w, alpha=alpha))(
          **_toy_state(b, seed=1))
  tables = _tables(b, seed=1)
  for i in range(b):
    want, want_scores = _ref_beam(tables[i], w, alpha)
    np.testing.assert_array_equal(seqs[i], want)
    np.testing.assert_allclose(scores[i], want_scores, rtol=1e-5)
  assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)  # best first


def test_beam_size_one_never_worse_than_greedy():
  """With one beam and no length penalty, greedy's sequence is always the alive beam or a
  finished one, so the best beam is at least as likely (often strictly: an early EOS)."""
  b = 3
  _, beam_scores = decoding.beam_search(_toy_fn, batch_size=b, max_len=L, beam_size=1,
                                        alpha=0.0, **_toy_state(b))
  _, greedy_lp = decoding.greedy(_toy_fn, batch_size=b, max_len=L, **_toy_state(b))
  assert np.all(np.asarray(beam_scores[:, 0]) >= np.asarray(greedy_lp) - 1e-5)


def _sample(b, rng, **kw):
  fn = jax.jit(functools.partial(decoding.sample, _toy_fn, batch_size=b, max_len=L, **kw))
  return fn(rng=rng, **_toy_state(b))


def test_sampling_is_a_function_of_the_rng_and_top_k_1_is_greedy():
  b = 3
  a, lp_a = _sample(b, jax.random.key(0), num_decodes=5)
  again, _ = _sample(b, jax.random.key(0), num_decodes=5)
  other, _ = _sample(b, jax.random.key(1), num_decodes=5)
  assert a.shape == (b, 5, L) and lp_a.shape == (b, 5)
  np.testing.assert_array_equal(a, again)
  assert not np.array_equal(a, other)
  top1, _ = _sample(b, jax.random.key(2), num_decodes=5, top_k=1)
  greedy = [_ref_greedy(t)[0] for t in _tables(b)]
  np.testing.assert_array_equal(top1, np.repeat(np.asarray(greedy)[:, None], 5, 1))
  # Reported log-probs are the model's own log-likelihood of the drawn tokens.
  tables = _tables(b)
  for i in range(b):
    toks = [int(t) for t in a[i, 0]]
    ref, seen = 0.0, []
    for tok in toks:
      ref += _log_softmax(_toy_logits(tables[i], seen))[tok]
      seen.append(tok)
      if tok == EOS:
        break
    np.testing.assert_allclose(lp_a[i, 0], ref, rtol=1e-5)


@pytest.mark.parametrize("kw", [dict(temperature=0.7, top_k=3), dict(temperature=1.3, top_p=0.8)])
def test_sampling_distribution(kw):
  n = 20000
  fn = jax.jit(functools.partial(decoding.sample, _toy_fn, batch_size=1, max_len=1,
                                 num_decodes=n, **kw))
  seqs, _ = fn(rng=jax.random.key(3), **_toy_state(1))
  freq = np.bincount(np.asarray(seqs).reshape(-1), minlength=V) / n
  logits = _toy_logits(_tables(1)[0], []) / kw["temperature"]
  p = np.exp(_log_softmax(logits))
  order = np.argsort(-p)
  keep = np.ones(V, bool)
  if kw.get("top_k"):
    keep[order[kw["top_k"]:]] = False
  if kw.get("top_p"):
    mass_before = np.cumsum(p[order]) - p[order]
    keep[order[mass_before >= kw["top_p"]]] = False
  want = np.where(keep, p, 0.0) / np.where(keep, p, 0.0).sum()
  np.testing.assert_array_equal(freq[~keep], 0.0)
  np.testing.assert_allclose(freq, want, atol=4 * np.sqrt(0.25 / n))


def test_score_candidates_matches_manual_sum():
  tables = _tables(2, seed=4)

  def logits_fn(static, decoder_inputs):
    # Teacher-forced toy model without the cache bonus: logits[pos] = table[pos, input[pos]].
    n, length = decoder_inputs.shape
    return static[jnp.arange(n)[:, None], jnp.arange(length)[None], decoder_inputs]

  cands = np.array([[[3, 4, 1, 0], [2, 1, 0, 0], [5, 5, 5, 1]],
                    [[1, 0, 0, 0], [6, 2, 4, 1], [4, 3, 1, 0]]], np.int32)
  scores, token_scores = decoding.score_candidates(logits_fn, jnp.asarray(tables), cands)
  assert scores.shape == (2, 3) and token_scores.shape == (2, 3, 4)
  for i in range(2):
    for c in range(3):
      toks, total = list(cands[i, c]), 0.0
      inputs = [0] + toks[:-1]
      for pos, tok in enumerate(toks):
        if tok:
          total += _log_softmax(tables[i, pos, inputs[pos]])[tok]
      np.testing.assert_allclose(scores[i, c], total, rtol=1e-5)
  assert float(token_scores[1, 0, 1]) == 0.0  # padding


# ----------------------------------------------------------------------------- a real tiny T5

def _t5_setup(variant):
  cfg = t5.decode_variant(variant, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                          num_encoder_layers=1, num_decoder_layers=2, vocab_size=32)
  model = t5.T5(cfg)
  tokens = jnp.ones((2, 4), jnp.int32)
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, tokens))
  params = {"params": random_params(abstract, seed=7)}
  enc = np.array([[5, 9, 3, 1, 0, 0], [7, 4, 1, 0, 0, 0], [8, 8, 2, 6, 11, 1]], np.int32)
  encoded, mask = jax.jit(lambda p, x: model.apply(p, x, method=t5.T5.encode))(params, enc)
  return model, params, encoded, mask


def _cached_fn(model, params):
  def fn(state):
    return model.apply(params, state.cur_token, state.cache, state.static, state.step,
                       method=t5.T5.decode_step)
  return fn


def _full_fn(model, params):
  """Reference: re-runs the whole decoder on every prefix, no cache."""
  def fn(state):
    logits = model.apply(params, state.static["encoded"], state.static["mask"],
                         t5.shift_right(state.sequences), method=t5.T5.decode)
    return jax.lax.dynamic_index_in_dim(logits, state.step, 1, keepdims=False), state.cache
  return fn


@pytest.mark.parametrize("variant, search", [("tiny", "greedy"), ("tiny_v1_0", "beam")])
def test_cached_decode_equals_full_recompute(variant, search):
  model, params, encoded, mask = _t5_setup(variant)
  max_len = 8
  cache, static = jax.jit(lambda e, m: model.apply(params, e, m, max_len,
                                                   method=t5.T5.init_cache))(encoded, mask)
  if search == "greedy":
    run = functools.partial(decoding.greedy, batch_size=3, max_len=max_len)
  else:
    run = functools.partial(decoding.beam_search, batch_size=3, max_len=max_len, beam_size=3)
  got, got_scores = jax.jit(lambda c, s: run(_cached_fn(model, params), cache=c, static=s))(
      cache, static)
  want, want_scores = jax.jit(lambda s: run(_full_fn(model, params), static=s))(
      {"encoded": encoded, "mask": mask})
  np.testing.assert_array_equal(got, want)
  np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)
  if search == "greedy":
    # Scoring the greedy output gives back its log-likelihood.
    def logits_fn(static, decoder_inputs):
      return model.apply(params, static[0], static[1], decoder_inputs, method=t5.T5.decode)
    scores, _ = jax.jit(functools.partial(decoding.score_candidates, logits_fn))(
        (encoded, mask), got[:, None])
    np.testing.assert_allclose(scores[:, 0], got_scores, rtol=1e-5)


def test_length_penalty():
  np.testing.assert_allclose(decoding.length_penalty(7, 0.6), (12 / 6) ** 0.6)
  assert math.isclose(float(decoding.length_penalty(3, 0.0)), 1.0)
