"""Questions about a clip, open-ended and 5-way multiple choice, answerable only from its frames.

Kinds (NExT-QA type codes in brackets):
  first   "what does the red circle do first?"                        (TP)
  after   "what does the red circle do after it moves left?"          (TN)
  before  "what does the red circle do before it spins?"              (TP)
  while   "what does the blue square do while the red circle grows?"  (TC)
  count   "how many objects are there?"                               (DC)
  which   "which object spins?"                                       (DO)
  colour  "what colour does the red circle turn?"                     (DO)
Order questions put the object's other action among the candidates, so a model that knows which
actions happen but not their order is at chance between those two.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.captions import phrase
from vidistill.data.synthetic.scene import Event, Scene

NUM_CHOICES = 5  # NExT-QA's a0..a4.
KINDS = ("first", "after", "before", "while", "count", "which", "colour")
NEXTQA_TYPE = {"first": "TP", "after": "TN", "before": "TP", "while": "TC", "count": "DC",
               "which": "DO", "colour": "DO"}
# MSRVTT-QA's category_id is the question word: 0 what, 1 who, 2 how, 3 when, 4 where.
_CATEGORY = {"what": 0, "which": 0, "who": 1, "how": 2, "when": 3, "where": 4}


@dataclasses.dataclass(frozen=True)
class Question:
  kind: str                    # One of KINDS.
  question: str
  answer: str                  # Open-ended answer == candidates[answer_index].
  candidates: tuple[str, ...]  # NUM_CHOICES distinct strings.
  answer_index: int

  @property
  def type(self) -> str:
    return NEXTQA_TYPE[self.kind]

  @property
  def category_id(self) -> int:
    return _CATEGORY[self.question.split()[0]]

  def to_json(self) -> dict:
    return {"kind": self.kind, "type": self.type, "category_id": self.category_id,
            "question": self.question, "answer": self.answer,
            "candidates": list(self.candidates), "answer_index": self.answer_index}


@dataclasses.dataclass(frozen=True)
class _Vocab:
  actions: Sequence[str]
  colours: Sequence[str]
  shapes: Sequence[str]


def _choices(rng: np.random.Generator, answer: str, hard: Sequence[str],
             pool: Sequence[str]) -> tuple[tuple[str, ...], int]:
  """NUM_CHOICES candidates: the answer, the `hard` negatives, then random ones from `pool`."""
  negatives = [h for h in dict.fromkeys(hard) if h != answer][:NUM_CHOICES - 1]
  rest = [p for p in dict.fromkeys(pool) if p != answer and p not in negatives]
  order = rng.permutation(len(rest))
  negatives += [rest[i] for i in order[:NUM_CHOICES - 1 - len(negatives)]]
  if len(negatives) < NUM_CHOICES - 1:
    raise ValueError(f"only {len(negatives) + 1} distinct candidates for answer {answer!r}; the "
                     f"vocabularies are too small for {NUM_CHOICES}-way questions")
  candidates = [answer] + negatives
  perm = rng.permutation(NUM_CHOICES)
  return tuple(candidates[i] for i in perm), int(np.argmax(perm == 0))


def _action_pool(rng: np.random.Generator, voc: _Vocab,
                 exclude_colours: Sequence[str]) -> list[str]:
  free = [c for c in voc.colours if c not in exclude_colours] or list(voc.colours)
  return [phrase(Event(a, 0, free[rng.integers(len(free))] if a == "change_colour" else None))
          for a in voc.actions]


def _candidates(scene: Scene, rng: np.random.Generator,
                voc: _Vocab) -> list[tuple[str, str, str, list[str], list[str]]]:
  """Every applicable (kind, question, answer, hard negatives, pool) of the scene."""
  out = []
  objs = scene.objects
  for obj in objs:
    ref = obj.reference()
    pool = _action_pool(rng, voc, [obj.colour])
    if len(obj.events) == 2:
      first, second = (phrase(e) for e in obj.events)
      out.append(("first", f"what does {ref} do first?", first, [second], pool))
      out.append(("after", f"what does {ref} do after it {first}?", second, [first], pool))
      out.append(("before", f"what does {ref} do before it {second}?", first, [second], pool))
    for event in obj.events:
      if event.action == "change_colour":
        out.append(("colour", f"what colour does {ref} turn?", event.target_colour,
                    [obj.colour], list(voc.colours)))
  for a in objs:
    for b in objs:
      if a is b:
        continue
      for ea in a.events:
        for eb in b.events:
          if ea.slot == eb.slot:
            out.append(("while", f"what does {b.reference()} do while {a.reference()} "
                        f"{phrase(ea)}?", phrase(eb), [phrase(e) for e in b.events],
                        _action_pool(rng, voc, [b.colour])))
  numbers = list(vocab.NUMBER_WORDS[1:NUM_CHOICES + 1])
  out.append(("count", "how many objects are there?", vocab.NUMBER_WORDS[len(objs)], [], numbers))
  actors: dict[str, list] = {}
  for obj in objs:
    for event in obj.events:
      actors.setdefault(event.action, []).append(obj)
  others = [f"the {c} {s}" for c in voc.colours for s in voc.shapes]
  for action, who in actors.items():
    if len(who) == 1 and action != "change_colour":
      verb = vocab.ACTION_PHRASE[action]
      out.append(("which", f"which object {verb}?", who[0].reference(),
                  [o.reference() for o in objs], others))
  return out


def make_questions(scene: Scene, rng: np.random.Generator, num: int, *, actions: Sequence[str],
                   colours: Sequence[str], shapes: Sequence[str]) -> list[Question]:
  """Up to `num` questions of different kinds where possible (kinds drawn in a random order)."""
  voc = _Vocab(actions, colours, shapes)
  by_kind: dict[str, list] = {}
  for item in _candidates(scene, rng, voc):
    by_kind.setdefault(item[0], []).append(item)
  kinds = [k for k in KINDS if k in by_kind]
  kinds = [kinds[i] for i in rng.permutation(len(kinds))]
  chosen = []
  while len(chosen) < num and any(by_kind[k] for k in kinds):
    for kind in kinds:
      if by_kind[kind] and len(chosen) < num:
        chosen.append(by_kind[kind].pop(int(rng.integers(len(by_kind[kind])))))
  questions = []
  for kind, question, answer, hard, pool in chosen:
    candidates, index = _choices(rng, answer, hard, pool)
    questions.append(Question(kind=kind, question=question, answer=answer,
                              candidates=candidates, answer_index=index))
  return questions
