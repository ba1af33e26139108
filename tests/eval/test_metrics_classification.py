"""Tests for vidistill/eval/metrics/classification.py against naive loops."""
import numpy as np
import pytest

from vidistill.eval.metrics import classification
from vidistill.eval.metrics import similarity


def test_expand_templates():
  prompts = classification.expand_templates(["playing_guitar", "dog"],
                                            ["a video of {}.", "{} in action"])
  assert prompts == [["a video of playing guitar.", "playing guitar in action"],
                     ["a video of dog.", "dog in action"]]
  assert len(classification.expand_templates(["x"])[0]) == len(classification.DEFAULT_TEMPLATES)


@pytest.mark.parametrize("templates", [["no slot"], ["{} and {}"], []])
def test_bad_templates_raise(templates):
  with pytest.raises(classification.ClassificationError):
    classification.expand_templates(["dog"], templates)


def test_prompt_ensemble_against_loop():
  rng = np.random.default_rng(0)
  prompts = rng.normal(size=(4, 3, 6)) * rng.uniform(0.5, 5, (4, 3, 1))
  got = classification.prompt_ensemble(prompts)
  for c in range(4):
    mean = sum(p / np.sqrt(np.sum(p**2)) for p in prompts[c]) / 3
    np.testing.assert_allclose(got[c], mean / np.sqrt(np.sum(mean**2)), rtol=1e-5)


def _reference_topk(scores, labels, k):
  """Pessimistic: the label must beat or tie fewer than k classes counting itself."""
  hits = [sum(1 for s in row if s >= row[label]) <= k for row, label in zip(scores, labels)]
  return 100 * np.mean(hits)


@pytest.mark.parametrize("integer_scores", [False, True])
def test_topk_accuracy_against_loop(integer_scores):
  rng = np.random.default_rng(1)
  scores = rng.normal(size=(200, 12))
  if integer_scores:
    scores = np.round(scores)
  labels = rng.integers(0, 12, 200)
  got = classification.topk_accuracy(scores, labels, ks=(1, 3, 5))
  for k in (1, 3, 5):
    assert got[f"top{k}"] == pytest.approx(_reference_topk(scores, labels, k))


def test_topk_index_ties_match_stable_argsort():
  rng = np.random.default_rng(2)
  scores = np.round(rng.normal(size=(100, 8)))
  labels = rng.integers(0, 8, 100)
  got = classification.topk_accuracy(scores, labels, ks=(1, 5), ties="index")
  order = np.argsort(-scores, axis=1, kind="stable")
  for k in (1, 5):
    expected = 100 * np.mean([label in row[:k] for row, label in zip(order, labels)])
    assert got[f"top{k}"] == pytest.approx(expected)


def test_zero_shot_accuracy_uses_cosine():
  rng = np.random.default_rng(3)
  classes = classification.prompt_ensemble(rng.normal(size=(10, 2, 16)))
  labels = rng.integers(0, 10, 64)
  videos = classes[labels] + 0.8 * rng.normal(size=(64, 16))
  got = classification.zero_shot_accuracy(videos, classes, labels)
  scaled = classification.zero_shot_accuracy(videos * rng.uniform(0.1, 10, (64, 1)), classes,
                                             labels)
  assert got == pytest.approx(scaled)
  unit = videos / np.linalg.norm(videos, axis=1, keepdims=True)
  assert got["top1"] == pytest.approx(_reference_topk(unit @ classes.T, labels, 1))
  assert got["top5"] == pytest.approx(_reference_topk(unit @ classes.T, labels, 5))


def test_errors_name_the_problem():
  with pytest.raises(classification.ClassificationError, match="k <= 3"):
    classification.topk_accuracy(np.zeros((2, 3)), np.array([0, 1]), ks=(5,))
  with pytest.raises(classification.ClassificationError, match=r"\[0, 3\)"):
    classification.topk_accuracy(np.zeros((2, 3)), np.array([0, 3]))
  with pytest.raises(classification.ClassificationError, match="D=4"):
    classification.zero_shot_accuracy(np.ones((2, 4)), np.ones((3, 5)), np.array([0, 1]))
  with pytest.raises(classification.ClassificationError, match="zero norm"):
    classification.prompt_ensemble(np.zeros((2, 1, 3)))
  with pytest.raises(similarity.SimilarityError, match="ties"):
    classification.topk_accuracy(np.zeros((2, 3)), np.array([0, 1]), ks=(1,), ties="lucky")
