"""Content metrics: captions parsed with the synthetic world's own grammar into objects and actions.

Surface metrics (BLEU, CIDEr) against detailed gold captions mix format with capability (in the
miniature a model trained on short captions scored below the image model on BLEU while it was
the only one that saw motion). These ask what a caption *says*: which objects (colour + shape)
it names, and which actions in which order, compared with the clip's truth (the world's event
list).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from vidistill.data.synthetic import vocab

_WORD = re.compile(r"[a-z]+")


# What an undirected move phrase ("is moving") parses to: a move was said, not which one, so it
# never equals a truth action (move_left, ...).
UNDIRECTED_MOVE = "move"


def _phrases() -> list[tuple[tuple[str, ...], str]]:
  """(words, action) of every phrase the world's captions use for an action, longest first.

  One action per phrase: SHORT_PHRASE says "is moving" for all four moves, and a set of
  (phrase, action) pairs would let string hashing (random per process) pick the direction, which
  made first-action accuracy of undirected captions differ from run to run.
  """
  out: dict[tuple[str, ...], str] = {}
  for table in (vocab.ACTION_PHRASE, vocab.ACTION_PARAPHRASE, vocab.SHORT_PHRASE_DIRECTED,
                vocab.SHORT_PHRASE):
    for action, text in table.items():
      words = tuple(text.replace("{colour}", "<colour>").split())
      said = out.setdefault(words, action)
      if said == action:
        continue
      if action not in vocab.MOVES or said not in (*vocab.MOVES, UNDIRECTED_MOVE):
        raise ValueError(f"phrase {' '.join(words)!r} names both {said} and {action}")
      out[words] = UNDIRECTED_MOVE
  return sorted(out.items(), key=lambda p: (-len(p[0]), p[0]))


_PHRASES = _phrases()


def _match(words: Sequence[str], i: int, phrase: Sequence[str]) -> bool:
  if i + len(phrase) > len(words):
    return False
  for w, p in zip(words[i:], phrase):
    if p == "<colour>":
      if w not in vocab.COLOURS:
        return False
    elif w != p:
      return False
  return True


def parse(text: str) -> dict[str, Any]:
  """{"objects": {(colour, shape)}, "actions": [action, ...] in the order the caption says them}.

  Actions are the world's (vocab.ACTIONS), or UNDIRECTED_MOVE for "is moving" without a direction.
  """
  words = _WORD.findall(text.lower())
  objects, actions = set(), []
  i = 0
  while i < len(words):
    if words[i] in vocab.COLOURS and i + 1 < len(words) and words[i + 1] in vocab.SHAPES:
      objects.add((words[i], words[i + 1]))
    for phrase, action in _PHRASES:
      if _match(words, i, phrase):
        actions.append(action)
        i += len(phrase) - 1
        break
    i += 1
  return {"objects": objects, "actions": actions}


def truth(record: Mapping[str, Any]) -> dict[str, Any]:
  """The same fields from a truth record: its events in the canonical caption's order."""
  events = sorted(record["events"], key=lambda e: (e["slot"], e["object"]))
  return {"objects": {(e["colour"], e["shape"]) for e in events},
          "actions": [e["action"] for e in events]}


def _f1(pred: set, gold: set) -> float:
  if not pred and not gold:
    return 1.0
  hits = len(pred & gold)
  if not hits:
    return 0.0
  precision, recall = hits / len(pred), hits / len(gold)
  return 2 * precision * recall / (precision + recall)


def score(captions: Mapping[str, str], records: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
  """Means over the clips of `captions` ({id: caption}) found in `records` ({id: truth record}).

  object_f1: F1 of the (colour, shape) pairs named vs present; first_action_accuracy: the first
  action said is the first action that happens; sequence_accuracy: the whole ordered list matches.
  """
  rows = []
  for vid, text in captions.items():
    if vid not in records:
      continue
    p, g = parse(text), truth(records[vid])
    rows.append((_f1(p["objects"], g["objects"]),
                 float(bool(p["actions"]) and p["actions"][0] == g["actions"][0]),
                 float(p["actions"] == g["actions"])))
  if not rows:
    raise ValueError("no caption matched a truth record: are the ids from this world's split?")
  n = len(rows)
  return {"object_f1": sum(r[0] for r in rows) / n,
          "first_action_accuracy": sum(r[1] for r in rows) / n,
          "sequence_accuracy": sum(r[2] for r in rows) / n, "clips": n}
