"""Video question answering: open-ended accuracy and multiple-choice accuracy, by question type.

Open-ended (MSR-VTT-QA, MSVD-QA, ActivityNet-QA, NExT-OE): a prediction is right when, after
`normalize_answer`, it equals one of the accepted answers (exact match, as those benchmarks score
top-1 answers). Multiple-choice (NExT-QA): the candidate with the highest log-likelihood is the
model's pick. Accuracies are percentages.

Per-type breakdown: pass `question_types` ([N] strings); `type_groups` maps raw types to groups
(`NEXTQA_TYPE_GROUPS`: CW/CH causal, TN/TC/TP temporal, DC/DL/DO descriptive, as NExT-QA's
`eval_mc.py` groups them by first letter). Both the raw types and the groups are reported.
"""
import re
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

NEXTQA_TYPE_GROUPS = {"CW": "causal", "CH": "causal", "TN": "temporal", "TC": "temporal",
                      "TP": "temporal", "DC": "descriptive", "DL": "descriptive",
                      "DO": "descriptive"}
MC_TIE_POLICIES = ("wrong", "first")

# The VQA evaluation's normalisation (Antol et al. 2015, vqaEval.py), simplified for single
# answers: its number-word map and article list; apostrophes dropped instead of its contraction
# table, so "dont" and "don't" meet at "dont".
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset(["a", "an", "the"])
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d)")
_NON_DECIMAL_PERIOD = re.compile(r"\.(?!\d)|(?<!\d)\.")
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-/:;<=>?@\[\\\]^_`{|}~]")


class QAMetricError(ValueError):
  """Predictions, answers, scores or types do not line up."""


def normalize_answer(text: str) -> str:
  """VQA-style answer normalisation.

  Lower-case; drop thousands commas ("1,000" -> "1000") and apostrophes; periods kept only
  inside numbers ("3.5"); other punctuation becomes a space; number words zero..ten (and "none")
  become digits; articles a/an/the are removed; whitespace collapses to single spaces.
  """
  text = _THOUSANDS_COMMA.sub("", text.lower()).replace("'", "").replace("\u2019", "")
  text = _PUNCTUATION.sub(" ", _NON_DECIMAL_PERIOD.sub(" ", text))
  words = (_NUMBER_WORDS.get(w, w) for w in text.split())
  return " ".join(w for w in words if w not in _ARTICLES)


def _accuracy_by_type(correct: np.ndarray, question_types: Optional[Sequence[str]],
                      type_groups: Optional[Mapping[str, str]]) -> Dict[str, float]:
  """{"accuracy": %, "accuracy/<type>": %, "accuracy/<group>": %} from [N] correctness."""
  correct = np.asarray(correct, np.float64)
  out = {"accuracy": float(100.0 * correct.mean())}
  if question_types is None:
    if type_groups is not None:
      raise QAMetricError("type_groups given without question_types")
    return out
  types = np.asarray([str(t) for t in question_types])
  if types.shape != correct.shape:
    raise QAMetricError(f"{types.size} question types for {correct.size} questions")
  labels = [types]
  if type_groups is not None:
    unknown = sorted(set(types.tolist()) - set(type_groups))
    if unknown:
      raise QAMetricError(f"question types {unknown} are not in type_groups "
                          f"(known: {sorted(type_groups)})")
    labels.append(np.asarray([type_groups[t] for t in types]))
  for label in labels:
    for name in sorted(set(label)):
      out[f"accuracy/{name}"] = float(100.0 * correct[label == name].mean())
  return out


def open_ended_accuracy(predictions: Sequence[str],
                        answers: Sequence[Union[str, Sequence[str]]],
                        question_types: Optional[Sequence[str]] = None,
                        type_groups: Optional[Mapping[str, str]] = None) -> Dict[str, float]:
  """Exact-match accuracy after `normalize_answer`.

  Args:
    predictions: [N] generated answers.
    answers: [N] accepted answers: a string, or a list of strings (any one matches).
    question_types: optional [N] type names for the breakdown.
    type_groups: optional map from type name to group name.

  Returns:
    {"accuracy": %, plus "accuracy/<type>" and "accuracy/<group>" when types are given}.
  """
  if isinstance(predictions, str) or len(predictions) != len(answers) or not predictions:
    raise QAMetricError(f"need one prediction per question: {len(predictions)} predictions, "
                        f"{len(answers)} answers")
  correct = []
  for i, (prediction, accepted) in enumerate(zip(predictions, answers)):
    accepted = [accepted] if isinstance(accepted, str) else list(accepted)
    if not accepted:
      raise QAMetricError(f"question {i} has no accepted answer")
    correct.append(normalize_answer(prediction) in {normalize_answer(a) for a in accepted})
  return _accuracy_by_type(np.array(correct), question_types, type_groups)


def multiple_choice_accuracy(scores: np.ndarray, answer_index: np.ndarray,
                             question_types: Optional[Sequence[str]] = None,
                             type_groups: Optional[Mapping[str, str]] = None,
                             ties: str = "wrong") -> Dict[str, float]:
  """Accuracy of picking the highest-scoring candidate.

  Args:
    scores: [N, C] float, e.g. the log-likelihood of each candidate answer.
    answer_index: [N] int in [0, C), the right candidate.
    question_types: optional [N] type names for the breakdown (e.g. NExT-QA's "CW").
    type_groups: optional map from type to group, e.g. NEXTQA_TYPE_GROUPS.
    ties: when the right candidate shares the top score with others: "wrong" counts it wrong (a
      model scoring every candidate alike gets 0, not 100); "first" takes the lowest index among
      the tied, as numpy/torch argmax do.

  Returns:
    {"accuracy": %, plus "accuracy/<type>" and "accuracy/<group>" when types are given}.
  """
  scores, answer_index = np.asarray(scores), np.asarray(answer_index)
  if ties not in MC_TIE_POLICIES:
    raise QAMetricError(f"ties={ties!r} is not one of {MC_TIE_POLICIES}")
  if scores.ndim != 2 or answer_index.shape != scores.shape[:1] or not scores.size:
    raise QAMetricError(f"scores {scores.shape} and answer_index {answer_index.shape} must be "
                        "[N, C] and [N] with N, C > 0")
  if not np.isfinite(scores).all():
    raise QAMetricError("scores hold NaN or inf; argmax would be arbitrary")
  if (not np.issubdtype(answer_index.dtype, np.integer) or
      ((answer_index < 0) | (answer_index >= scores.shape[1])).any()):
    raise QAMetricError(f"answer_index must hold ints in [0, {scores.shape[1]})")
  if ties == "first":
    correct = scores.argmax(axis=1) == answer_index
  else:
    at_top = scores == scores.max(axis=1, keepdims=True)
    correct = at_top[np.arange(len(scores)), answer_index] & (at_top.sum(axis=1) == 1)
  return _accuracy_by_type(correct, question_types, type_groups)
