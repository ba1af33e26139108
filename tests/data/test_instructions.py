"""Instruction synthesis: answers agree with the event lists they come from."""
import json

import numpy as np

from vidistill.data import instructions as ins

TRUTH = [  # The synthetic world's truth `events` layout (vidistill/data/synthetic/captions.py).
    {"action": "bounce", "colour": "blue", "shape": "cross", "size": "small", "slot": 0,
     "start_frame": 0, "end_frame": 3, "target_colour": None, "object": 0,
     "text": "the small blue cross bounces"},
    {"action": "change_colour", "colour": "yellow", "shape": "ring", "size": "large", "slot": 0,
     "start_frame": 0, "end_frame": 3, "target_colour": "green", "object": 1,
     "text": "the large yellow ring turns green"},
    {"action": "grow", "colour": "blue", "shape": "cross", "size": "small", "slot": 1,
     "start_frame": 4, "end_frame": 7, "target_colour": None, "object": 0,
     "text": "the small blue cross grows"},
]


def _by_kind(items):
  out = {}
  for i in items:
    out.setdefault(i.kind, []).append(i)
  return out


def test_events_from_synthetic_split_actor_and_effect():
  events = ins.events_from_synthetic(TRUTH)
  assert [e.actor for e in events] == ["the small blue cross", "the large yellow ring",
                                       "the small blue cross"]
  assert [e.action for e in events] == ["bounces", "turns green", "grows"]
  assert [e.effect for e in events] == [None, "green", "bigger"]
  assert [e.text for e in events] == [t["text"] for t in TRUTH]


def test_templates_agree_with_event_order():
  kinds = _by_kind(ins.template_instructions(ins.events_from_synthetic(TRUTH)))
  assert kinds["describe"][0].answer == ("the small blue cross bounces and the large yellow ring "
                                         "turns green, then the small blue cross grows")
  assert [(i.instruction, i.answer) for i in kinds["first"]] == [
      ("what does the small blue cross do first?", "bounces")]
  assert kinds["after"][0].instruction == "what does the small blue cross do after it bounces?"
  assert kinds["after"][0].answer == "grows"
  assert kinds["before"][0].answer == "bounces"
  assert {(i.instruction, i.answer) for i in kinds["cause"]} == {
      ("why is the large yellow ring green at the end?", "because it turns green"),
      ("why is the small blue cross bigger at the end?", "because it grows")}
  assert kinds["count_objects"][0].answer == "two"
  assert {i.instruction: i.answer for i in kinds["count_actions"]} == {
      "how many things does the small blue cross do?": "two",
      "how many things does the large yellow ring do?": "one"}


def test_cause_not_asked_when_a_later_action_follows():
  events = [ins.Event("the red circle", "grows", 0, 3, "bigger"),
            ins.Event("the red circle", "shrinks", 4, 7, "smaller")]
  causes = [i for i in ins.template_instructions(events) if i.kind == "cause"]
  assert [c.instruction for c in causes] == ["why is the red circle smaller at the end?"]


def test_template_synthesizer_deterministic_and_bounded():
  events = ins.events_from_synthetic(TRUTH)
  videos = [(f"v{i}", events) for i in range(20)]
  synth = ins.TemplateSynthesizer(per_video=3)
  rows_a = list(ins.synthesize(videos, synth, seed=7))
  rows_b = list(ins.synthesize(videos, synth, seed=7))
  rows_c = list(ins.synthesize(videos, synth, seed=8))
  assert rows_a == rows_b and rows_a != rows_c
  per_video = {}
  for r in rows_a:
    per_video.setdefault(r["id"], []).append(r)
  assert all(len(v) == 3 and v[0]["kind"] == "describe" for v in per_video.values())
  valid = {(i.kind, i.answer) for i in ins.template_instructions(events)}
  assert all((r["kind"], r["answer"]) in valid for r in rows_a)
  json.dumps(rows_a)  # Rows are plain JSON.


def test_timed_captions_become_events():
  timed = [{"utterance": "The man picks up the ball.", "start_time": 1.0, "end_time": 2.5},
           {"utterance": "throws it to the dog", "start_time": 3.0, "end_time": 4.0}]
  events = ins.events_from_timed_captions(timed, actor="the man")
  assert [(e.actor, e.action) for e in events] == [("The man", "picks up the ball"),
                                                    ("the man", "throws it to the dog")]
  assert ins.describe(events) == "The man picks up the ball, then the man throws it to the dog"


def test_llm_synthesizer_parses_and_falls_back():
  prompts = []

  def fake_llm(prompt):
    prompts.append(prompt)
    return "Q: what happens first?\nA: the cross bounces\nnoise\nQ: why?\nA: because"

  events = ins.events_from_synthetic(TRUTH)
  out = ins.LLMSynthesizer(fake_llm, per_video=5)(events, np.random.default_rng(0))
  assert [(i.instruction, i.answer) for i in out] == [("what happens first?", "the cross bounces"),
                                                      ("why?", "because")]
  assert "- the small blue cross bounces" in prompts[0]
  fallback = ins.LLMSynthesizer(lambda p: "no pairs here", per_video=2)(
      events, np.random.default_rng(0))
  assert len(fallback) == 2 and fallback[0].kind == "describe"
