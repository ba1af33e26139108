"""Tests for vidistill/eval/metrics/captioning.py against pycocoevalcap (the reference)."""
import math

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from vidistill.eval.metrics import captioning


def _random_corpus(rng, num_items, vocab_size, max_refs=5):
  """Tokenised predictions and references; a small vocabulary makes n-gram matches common."""
  vocab = [f"w{i}" for i in range(vocab_size)]

  def sentence():
    return " ".join(rng.choice(vocab, rng.integers(1, 13)))

  predictions = [sentence() for _ in range(num_items)]
  references = [[sentence() for _ in range(rng.integers(1, max_refs + 1))]
                for _ in range(num_items)]
  return predictions, references


def _pycocoevalcap(predictions, references):
  gts = {i: refs for i, refs in enumerate(references)}
  res = {i: [p] for i, p in enumerate(predictions)}
  bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
  rouge, _ = Rouge().compute_score(gts, res)
  cider, _ = Cider().compute_score(gts, res)
  return {"BLEU-1": bleu[0], "BLEU-2": bleu[1], "BLEU-3": bleu[2], "BLEU-4": bleu[3],
          "ROUGE-L": rouge, "CIDEr-D": cider}


@pytest.mark.parametrize("seed,num_items,vocab_size", [(0, 40, 5), (1, 60, 12), (2, 25, 40),
                                                       (3, 3, 4)])
def test_matches_pycocoevalcap(seed, num_items, vocab_size):
  predictions, references = _random_corpus(np.random.default_rng(seed), num_items, vocab_size)
  ours = captioning.caption_metrics(predictions, references, tokenize=False)
  theirs = _pycocoevalcap(predictions, references)
  assert set(ours) == set(theirs)
  for name, value in theirs.items():
    assert ours[name] / 100 == pytest.approx(value, abs=1e-6), name


def test_empty_and_one_word_captions_match_pycocoevalcap():
  # coco measures CIDEr-D's length penalty in bigrams; equivalent here, so pinned down at the edges.
  predictions = ["dog", "", "a dog runs", "cat"]
  references = [["a dog runs fast", "dog"], ["a cat"], ["a dog runs", "run"], ["the cat sits"]]
  ours = captioning.caption_metrics(predictions, references, tokenize=False)
  for name, value in _pycocoevalcap(predictions, references).items():
    assert ours[name] / 100 == pytest.approx(value, abs=1e-9), name


def test_bleu_by_hand():
  # One item: all unigrams match (p1 = 1), candidate length 2, closest reference length 4:
  # brevity penalty exp(1 - 4 / 2).
  got = captioning.bleu(["a b"], [["a b c d"]])
  assert got["BLEU-1"] == pytest.approx(100 * math.exp(-1), rel=1e-8)
  assert captioning.bleu(["a b c d"], [["a b c d"]])["BLEU-4"] == pytest.approx(100)


def test_bleu_closest_reference_length_prefers_shorter_on_tie():
  # Candidate length 3, references of length 2 and 4 are equally close: coco picks 2 (no penalty).
  got = captioning.bleu(["a b c"], [["a b c d", "a b"]])
  assert got["BLEU-1"] == pytest.approx(100, rel=1e-8)


def test_rouge_l_by_hand():
  # LCS("a b c", "a c d e") = 2: P = 2/3, R = 2/4, F_beta with beta = 1.2.
  p, r, b2 = 2 / 3, 2 / 4, 1.2**2
  expected = 100 * (1 + b2) * p * r / (r + b2 * p)
  assert captioning.rouge_l(["a b c"], [["a c d e"]])["ROUGE-L"] == pytest.approx(expected)
  assert captioning.rouge_l(["x y"], [["a b"]])["ROUGE-L"] == 0.0


def test_cider_d_perfect_disjoint_items_by_hand():
  # Every n-gram occurs in one item's references only: idf = log(2) everywhere, cosine 1 for each
  # order 1..4, no length penalty, so each item scores 10 (coco's x10), 1000 on the paper scale.
  got = captioning.cider_d(["a man runs fast", "two dogs bark loudly"],
                           [["a man runs fast"], ["two dogs bark loudly"]])
  assert got["CIDEr-D"] == pytest.approx(1000.0)
  # Three words have no 4-gram: that order contributes 0 to the mean over orders.
  got = captioning.cider_d(["a man runs", "two dogs bark"], [["a man runs"], ["two dogs bark"]])
  assert got["CIDEr-D"] == pytest.approx(750.0)


def test_cider_d_ngram_in_every_item_carries_no_weight():
  # "the" is in all items' references: idf = log(2) - log(2) = 0.
  got = captioning.cider_d(["the", "the"], [["the cat"], ["the dog"]])
  assert got["CIDEr-D"] == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_lcs_length_against_dynamic_programming(seed):
  rng = np.random.default_rng(seed)
  a = list(rng.choice(["x", "y", "z", "w"], rng.integers(0, 30)))
  b = list(rng.choice(["x", "y", "z", "w"], rng.integers(0, 30)))
  table = np.zeros((len(a) + 1, len(b) + 1), int)
  for i in range(1, len(a) + 1):
    for j in range(1, len(b) + 1):
      table[i, j] = (table[i - 1, j - 1] + 1 if a[i - 1] == b[j - 1]
                     else max(table[i - 1, j], table[i, j - 1]))
  assert captioning.lcs_length(a, b) == table[-1, -1]


def test_tokenize_makes_case_and_punctuation_irrelevant():
  raw = captioning.caption_metrics(["A man, singing!"], [["a man is singing.", "A MAN SINGS"]])
  clean = captioning.caption_metrics(["a man singing"], [["a man is singing", "a man sings"]],
                                     tokenize=False)
  assert raw == clean


@pytest.mark.parametrize("predictions,references", [
    (["a"], [["a"], ["b"]]),
    (["a", "b"], [["a"]]),
    (["a"], [[]]),
    (["a"], ["a"]),
    ([], []),
])
def test_misaligned_inputs_raise(predictions, references):
  with pytest.raises(captioning.CaptionMetricError):
    captioning.caption_metrics(predictions, references)
