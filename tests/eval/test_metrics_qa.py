"""Tests for vidistill/eval/metrics/qa.py: hand cases and naive reference loops."""
import numpy as np
import pytest

from vidistill.eval.metrics import qa


@pytest.mark.parametrize("raw,normalised", [
    ("The Dog.", "dog"),
    ("  a   red   car ", "red car"),
    ("Two", "2"),
    ("none", "0"),
    ("3.5", "3.5"),
    ("1,000", "1000"),
    ("don't", "dont"),
    ("yes!", "yes"),
    ("left-hand side", "left hand side"),
    ("an apple, the pear", "apple pear"),
    ("end.", "end"),
    ("ten cats", "10 cats"),
    ("", ""),
])
def test_normalize_answer(raw, normalised):
  assert qa.normalize_answer(raw) == normalised


def test_open_ended_accuracy_against_loop():
  rng = np.random.default_rng(0)
  words = ["dog", "the dog", "Two", "2", "cat", "a cat.", "red", "blue"]
  predictions = list(rng.choice(words, 200))
  answers = [list(rng.choice(words, rng.integers(1, 3))) for _ in range(200)]
  types = list(rng.choice(["what", "how many", "who"], 200))
  got = qa.open_ended_accuracy(predictions, answers, types)
  # Reference normalisation written out for this vocabulary only.
  canon = {"dog": "dog", "the dog": "dog", "Two": "2", "2": "2", "cat": "cat", "a cat.": "cat",
           "red": "red", "blue": "blue"}
  correct = np.array([canon[p] in {canon[a] for a in accepted}
                      for p, accepted in zip(predictions, answers)])
  assert got["accuracy"] == pytest.approx(100 * correct.mean())
  for t in ("what", "how many", "who"):
    mask = np.array(types) == t
    assert got[f"accuracy/{t}"] == pytest.approx(100 * correct[mask].mean())


def test_open_ended_single_string_answers():
  got = qa.open_ended_accuracy(["Yes", "no", "three"], ["yes", "yes", "3"])
  assert got == {"accuracy": pytest.approx(200 / 3)}


def _reference_mc(scores, answers, ties):
  correct = []
  for row, answer in zip(scores, answers):
    best = max(row)
    winners = [j for j, s in enumerate(row) if s == best]
    if ties == "first":
      correct.append(winners[0] == answer)
    else:
      correct.append(winners == [answer])
  return 100 * np.mean(correct)


@pytest.mark.parametrize("ties", qa.MC_TIE_POLICIES)
def test_multiple_choice_against_loop(ties):
  rng = np.random.default_rng(1)
  scores = rng.integers(-3, 1, (300, 5)).astype(np.float32)  # integer log-likelihoods tie often
  answers = rng.integers(0, 5, 300)
  got = qa.multiple_choice_accuracy(scores, answers, ties=ties)
  assert got["accuracy"] == pytest.approx(_reference_mc(scores, answers, ties))


def test_multiple_choice_nextqa_groups_by_hand():
  scores = np.array([[0, 1], [1, 0], [1, 0], [0, 1], [1, 1]], np.float32)
  answers = np.array([1, 1, 0, 0, 0])
  types = ["CW", "CH", "TN", "TP", "DC"]
  got = qa.multiple_choice_accuracy(scores, answers, types, qa.NEXTQA_TYPE_GROUPS)
  assert got["accuracy"] == pytest.approx(40.0)
  assert got["accuracy/causal"] == pytest.approx(50.0)
  assert got["accuracy/temporal"] == pytest.approx(50.0)
  assert got["accuracy/descriptive"] == 0.0  # a tie counts as wrong by default
  assert got["accuracy/CW"] == 100.0 and got["accuracy/TP"] == 0.0
  first = qa.multiple_choice_accuracy(scores, answers, types, qa.NEXTQA_TYPE_GROUPS, ties="first")
  assert first["accuracy/descriptive"] == 100.0


def test_errors_name_the_problem():
  with pytest.raises(qa.QAMetricError, match="one prediction per question"):
    qa.open_ended_accuracy(["a"], ["a", "b"])
  with pytest.raises(qa.QAMetricError, match="question 0 has no accepted answer"):
    qa.open_ended_accuracy(["a"], [[]])
  with pytest.raises(qa.QAMetricError, match=r"\['XX'\]"):
    qa.multiple_choice_accuracy(np.zeros((1, 2)), np.array([0]), ["XX"], qa.NEXTQA_TYPE_GROUPS)
  with pytest.raises(qa.QAMetricError, match="NaN"):
    qa.multiple_choice_accuracy(np.full((1, 2), np.nan), np.array([0]))
  with pytest.raises(qa.QAMetricError, match=r"\[0, 2\)"):
    qa.multiple_choice_accuracy(np.zeros((1, 2)), np.array([2]))
  with pytest.raises(qa.QAMetricError, match="ties"):
    qa.multiple_choice_accuracy(np.zeros((1, 2)), np.array([0]), ties="random")
