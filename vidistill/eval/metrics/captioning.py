"""Corpus-level captioning metrics as coco-caption computes them: BLEU-1..4, ROUGE-L, CIDEr-D.

Every function takes `predictions: Sequence[str]` (one caption per item) and
`references: Sequence[Sequence[str]]` (at least one caption per item), already tokenised: tokens
joined by single spaces, as `coco_tokenize` returns them. `caption_metrics` tokenises for you.

Scores are on the scale papers print: 100x coco-caption's raw values (BLEU and ROUGE-L in
[0, 100]; CIDEr-D, which already has a x10 inside, around 50-150 for good video captioners).
"""
import collections
import math
from typing import Counter, Dict, List, Sequence

import numpy as np

from vidistill.eval.metrics.coco_tokenizer import coco_tokenize

__all__ = ["bleu", "rouge_l", "cider_d", "caption_metrics", "coco_tokenize"]

# coco-caption's smoothing: a zero n-gram match gives ~0 rather than log(0).
_BLEU_TINY = 1e-15
_BLEU_SMALL = 1e-9
_ROUGE_BETA = 1.2
_CIDER_SIGMA = 6.0
_PAPER_SCALE = 100.0


class CaptionMetricError(ValueError):
  """Predictions and references do not line up."""


def _check(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
  if isinstance(predictions, str) or len(predictions) != len(references):
    raise CaptionMetricError(
        f"got {len(predictions)} predictions for {len(references)} reference lists; give one "
        "prediction string and one list of reference strings per item")
  if not predictions:
    raise CaptionMetricError("no items to score")
  for i, refs in enumerate(references):
    if isinstance(refs, str) or not refs:
      raise CaptionMetricError(
          f"item {i}: references must be a non-empty list of strings, got {refs!r}")


def _ngrams(tokens: Sequence[str], max_n: int) -> Counter:
  """Counts of every 1..max_n-gram of `tokens`, keyed by tuple."""
  return collections.Counter(
      tuple(tokens[i:i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1))


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]],
         max_n: int = 4) -> Dict[str, float]:
  """Corpus BLEU-1..max_n (Papineni et al. 2002) with coco-caption's choices.

  Clipped n-gram matches and candidate n-gram counts are summed over the corpus before dividing;
  the brevity penalty uses, per item, the reference length closest to the candidate's (the
  shorter one on a tie), summed over the corpus. BLEU-n is the geometric mean of precisions 1..n.

  Args:
    predictions: [N] tokenised candidate captions.
    references: [N][R_i] tokenised reference captions.
    max_n: the largest n-gram order.

  Returns:
    {"BLEU-1": float, ..., "BLEU-{max_n}": float}, each in [0, 100].
  """
  _check(predictions, references)
  correct = np.zeros(max_n)
  guess = np.zeros(max_n)
  test_len = ref_len = 0
  for prediction, refs in zip(predictions, references):
    tokens = prediction.split()
    counts = _ngrams(tokens, max_n)
    max_ref_counts: Counter = collections.Counter()
    ref_lens = []
    for ref in refs:
      ref_tokens = ref.split()
      ref_lens.append(len(ref_tokens))
      max_ref_counts |= _ngrams(ref_tokens, max_n)  # Counter union keeps the max count.
    test_len += len(tokens)
    ref_len += min(ref_lens, key=lambda l: (abs(l - len(tokens)), l))
    for n in range(1, max_n + 1):
      guess[n - 1] += max(0, len(tokens) - n + 1)
    for ngram, count in counts.items():
      correct[len(ngram) - 1] += min(count, max_ref_counts[ngram])
  log_precision = np.log((correct + _BLEU_TINY) / (guess + _BLEU_SMALL))
  ratio = (test_len + _BLEU_TINY) / (ref_len + _BLEU_SMALL)
  brevity = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
  return {f"BLEU-{n}": _PAPER_SCALE * brevity * math.exp(np.sum(log_precision[:n]) / n)
          for n in range(1, max_n + 1)}


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
  """Length of the longest common subsequence of two token lists.

  Bit-parallel (Allison & Dix 1986): bit j of `row` is 0 where the LCS grows at b[j], so one
  big-integer add per token of `a` replaces a row of the O(len(a) * len(b)) table.
  """
  masks: Dict[str, int] = collections.defaultdict(int)
  for j, token in enumerate(b):
    masks[token] |= 1 << j
  full = (1 << len(b)) - 1
  row = full
  for token in a:
    matched = row & masks.get(token, 0)
    row = ((row + matched) | (row - matched)) & full
  return len(b) - bin(row).count("1")


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> Dict[str, float]:
  """ROUGE-L (Lin 2004) as coco-caption: per item, the LCS precision and recall are each
  maximised over the references, combined as an F-measure with beta = 1.2, then averaged.

  An empty candidate or reference scores 0 (coco-caption splits "" into one empty token, which
  gives 0 as well unless both are empty).

  Args:
    predictions: [N] tokenised candidate captions.
    references: [N][R_i] tokenised reference captions.

  Returns:
    {"ROUGE-L": float in [0, 100]}.
  """
  _check(predictions, references)
  scores = []
  for prediction, refs in zip(predictions, references):
    candidate = prediction.split()
    precision = recall = 0.0
    for ref in refs:
      ref_tokens = ref.split()
      if candidate and ref_tokens:
        lcs = lcs_length(ref_tokens, candidate)
        precision = max(precision, lcs / len(candidate))
        recall = max(recall, lcs / len(ref_tokens))
    if precision > 0 and recall > 0:
      beta2 = _ROUGE_BETA**2
      scores.append((1 + beta2) * precision * recall / (recall + beta2 * precision))
    else:
      scores.append(0.0)
  return {"ROUGE-L": _PAPER_SCALE * float(np.mean(scores))}


def _tfidf(counts: Counter, log_num_items: float, document_frequency: Counter,
           max_n: int) -> tuple[List[Dict[tuple, float]], np.ndarray]:
  """Per-order tf-idf vectors (raw counts x idf) and their L2 norms."""
  vectors: List[Dict[tuple, float]] = [{} for _ in range(max_n)]
  for ngram, count in counts.items():
    idf = log_num_items - math.log(max(1.0, document_frequency[ngram]))
    vectors[len(ngram) - 1][ngram] = count * idf
  norms = np.array([math.sqrt(sum(v * v for v in vec.values())) for vec in vectors])
  return vectors, norms


def cider_d(predictions: Sequence[str], references: Sequence[Sequence[str]],
            max_n: int = 4, sigma: float = _CIDER_SIGMA) -> Dict[str, float]:
  """CIDEr-D (Vedantam et al. 2015), exactly as coco-caption's "CIDEr" (which is CIDEr-D).

  Per n-gram order 1..4: cosine similarity of tf-idf vectors with the candidate's weights clipped
  to the reference's (min(g_c, g_r) * g_r), times a Gaussian length penalty
  exp(-delta^2 / (2 sigma^2)); averaged over orders and references, x10, then over items. Document
  frequencies come from the references of the evaluated items themselves, so a score depends on
  which items are scored together (corpus-level, as papers report).

  coco-caption measures the length difference delta in bigrams (len - 1); for non-empty captions
  that is the word-length difference used here, and an empty caption scores 0 either way.

  Args:
    predictions: [N] tokenised candidate captions.
    references: [N][R_i] tokenised reference captions.
    max_n: the largest n-gram order.
    sigma: the length penalty's standard deviation.

  Returns:
    {"CIDEr-D": float >= 0} (100x coco-caption's "CIDEr").
  """
  _check(predictions, references)
  ref_counts = [[_ngrams(r.split(), max_n) for r in refs] for refs in references]
  ref_lengths = [[len(r.split()) for r in refs] for refs in references]
  document_frequency: Counter = collections.Counter()
  for counts in ref_counts:
    document_frequency.update(set().union(*counts))
  log_num_items = math.log(float(len(predictions)))

  scores = []
  for prediction, refs, lengths in zip(predictions, ref_counts, ref_lengths):
    tokens = prediction.split()
    vec, norm = _tfidf(_ngrams(tokens, max_n), log_num_items, document_frequency, max_n)
    total = np.zeros(max_n)
    for ref, ref_length in zip(refs, lengths):
      ref_vec, ref_norm = _tfidf(ref, log_num_items, document_frequency, max_n)
      delta = float(len(tokens) - ref_length)
      for n in range(max_n):
        value = sum(min(v, ref_vec[n].get(g, 0.0)) * ref_vec[n].get(g, 0.0)
                    for g, v in vec[n].items())
        if norm[n] != 0 and ref_norm[n] != 0:
          value /= norm[n] * ref_norm[n]
        total[n] += value * math.exp(-delta**2 / (2 * sigma**2))
    scores.append(10.0 * np.mean(total) / len(refs))
  return {"CIDEr-D": _PAPER_SCALE * float(np.mean(scores))}


def caption_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]],
                    tokenize: bool = True) -> Dict[str, float]:
  """BLEU-1..4, ROUGE-L and CIDEr-D of a corpus, the COCO-caption evaluation minus METEOR/SPICE.

  Args:
    predictions: [N] candidate captions, raw text (or tokenised with `tokenize=False`).
    references: [N][R_i] reference captions for the same items.
    tokenize: apply `coco_tokenize` (PTB-style, lower-cased, punctuation dropped) first.

  Returns:
    {"BLEU-1".."BLEU-4", "ROUGE-L", "CIDEr-D"} -> float, 100x coco-caption's values.
  """
  _check(predictions, references)
  if tokenize:
    predictions = [coco_tokenize(p) for p in predictions]
    references = [[coco_tokenize(r) for r in refs] for refs in references]
  return {**bleu(predictions, references), **rouge_l(predictions, references),
          **cider_d(predictions, references)}
