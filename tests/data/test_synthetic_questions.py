"""QA about synthetic clips: right answers, fair 5-way choices, order-sensitive negatives."""
import collections
import re

import numpy as np

from vidistill.data.synthetic import questions
from vidistill.data.synthetic import scene as scene_lib
from vidistill.data.synthetic import vocab

SPEC = scene_lib.WorldSpec(resolution=48, num_frames=16, shapes=vocab.SHAPES,
                           colours=tuple(vocab.COLOURS),
                           sizes=tuple(sorted(vocab.SIZES.items(), key=lambda kv: kv[1])),
                           actions=vocab.ACTIONS, backgrounds=vocab.BACKGROUNDS, min_objects=1,
                           max_objects=3, two_action_prob=0.6)
VOCAB = dict(actions=vocab.ACTIONS, colours=tuple(vocab.COLOURS), shapes=vocab.SHAPES)


def _all(n=300, per_clip=4, seed=0):
  rng = np.random.default_rng(seed)
  for _ in range(n):
    scene = scene_lib.sample_scene(rng, SPEC)
    yield scene, questions.make_questions(scene, rng, per_clip, **VOCAB)


def _object(scene, reference):
  (obj,) = [o for o in scene.objects if f"the {o.colour} {o.shape}" == reference]
  return obj


def _phrase(event):
  return vocab.action_phrase(event.action, event.target_colour)


def _expected(scene, question):
  """The answer, read off the scene's events by parsing the question text."""
  q = question
  if m := re.fullmatch(r"what does (the \w+ \w+) do first\?", q):
    return _phrase(_object(scene, m[1]).events[0])
  if m := re.fullmatch(r"what does (the \w+ \w+) do after it (.+)\?", q):
    events = _object(scene, m[1]).events
    assert _phrase(events[0]) == m[2]
    return _phrase(events[1])
  if m := re.fullmatch(r"what does (the \w+ \w+) do before it (.+)\?", q):
    events = _object(scene, m[1]).events
    assert _phrase(events[1]) == m[2]
    return _phrase(events[0])
  if m := re.fullmatch(r"what does (the \w+ \w+) do while (the \w+ \w+) (.+)\?", q):
    (during,) = [e for e in _object(scene, m[2]).events if _phrase(e) == m[3]]
    (same,) = [e for e in _object(scene, m[1]).events if e.slot == during.slot]
    return _phrase(same)
  if q == "how many objects are there?":
    return vocab.NUMBER_WORDS[len(scene.objects)]
  if m := re.fullmatch(r"which object (.+)\?", q):
    doers = [o for o in scene.objects if any(_phrase(e) == m[1] for e in o.events)]
    assert len(doers) == 1, "a 'which' question must have one right object"
    return f"the {doers[0].colour} {doers[0].shape}"
  if m := re.fullmatch(r"what colour does (the \w+ \w+) turn\?", q):
    return next(e.target_colour for e in _object(scene, m[1]).events if e.target_colour)
  raise AssertionError(f"unexpected question {q!r}")


def test_answers_follow_from_the_scene():
  kinds = collections.Counter()
  for scene, qs in _all():
    for q in qs:
      kinds[q.kind] += 1
      assert q.answer == _expected(scene, q.question), (q, scene)
  assert set(kinds) == set(questions.KINDS)


def test_choices_are_five_distinct_strings_with_the_answer_at_a_uniform_index():
  positions = collections.Counter()
  for _, qs in _all():
    for q in qs:
      assert len(q.candidates) == questions.NUM_CHOICES == len(set(q.candidates))
      assert q.candidates[q.answer_index] == q.answer
      positions[q.answer_index] += 1
  total = sum(positions.values())
  assert all(0.15 < positions[i] / total < 0.25 for i in range(5)), positions


def test_order_questions_offer_the_other_action_as_a_negative():
  checked = 0
  for scene, qs in _all():
    for q in qs:
      if q.kind in ("first", "after", "before"):
        ref = re.match(r"what does (the \w+ \w+)", q.question)[1]
        phrases = {_phrase(e) for e in _object(scene, ref).events}
        assert phrases <= set(q.candidates)
        checked += 1
  assert checked > 50


def test_questions_per_clip_prefer_different_kinds():
  for scene, qs in _all(100, per_clip=3):
    assert 1 <= len(qs) <= 3
    counts = collections.Counter(q.kind for q in qs).values()
    assert max(counts) - min(counts) <= 1  # A kind repeats only once every kind has been asked.
    assert len({q.question for q in qs}) == len(qs)


def test_codes_follow_nextqa_and_msrvtt_qa():
  for _, qs in _all(50):
    for q in qs:
      assert q.type in ("TN", "TP", "TC", "DC", "DO")
      assert q.category_id == (2 if q.question.startswith("how") else 0)
      record = q.to_json()
      assert record["candidates"][record["answer_index"]] == record["answer"]
