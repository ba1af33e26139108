"""Instruction data for language adaptation (stage 2 of the method), synthesised from event lists.

The paper has an LLM turn VidLN narratives into detailed descriptions and temporal / causal
questions. Here templates do it from a time-stamped event list, which both the synthetic world
(its truth `events`) and real narratives (VidLN `timed_caption`s) provide; a user can plug in an
LLM through `LLMSynthesizer` with any `prompt -> text` function.

Kinds: describe (detailed description), first / last / after / before (temporal), cause (why a
state holds at the end: effect -> action), count_objects / count_actions (counting).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

KINDS = ("describe", "first", "last", "after", "before", "cause", "count_objects", "count_actions")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DESCRIBE_PROMPTS = ("describe the video in detail.", "what happens in the video?",
                    "describe everything that happens, in order.")


@dataclasses.dataclass(frozen=True)
class Event:
  actor: str                 # "the small blue cross"
  action: str                # "bounces" (a predicate: actor + " " + action reads as a sentence)
  start: float               # Any monotone time unit (frames, seconds).
  end: float
  effect: str | None = None  # The state the action leaves ("bigger", "green"), for "why" questions.

  @property
  def text(self) -> str:
    return f"{self.actor} {self.action}"


@dataclasses.dataclass(frozen=True)
class Instruction:
  kind: str
  instruction: str
  answer: str


class Synthesizer(Protocol):
  def __call__(self, events: Sequence[Event], rng: np.random.Generator) -> list[Instruction]:
    ...


# The end state each synthetic-world action leaves, phrased to follow "why is <actor> ... at the end".
SYNTHETIC_EFFECTS = {"grow": "bigger", "shrink": "smaller", "disappear": "gone",
                     "move_left": "further left", "move_right": "further right",
                     "move_up": "higher", "move_down": "lower"}


def events_from_synthetic(truth_events: Iterable[Mapping]) -> list[Event]:
  """The synthetic world's truth `events` (see vidistill/data/synthetic/captions.py) as Events."""
  out = []
  for e in truth_events:
    actor, action = _split_subject(e["text"], f"the {e['size']} {e['colour']} {e['shape']}")
    effect = e["target_colour"] if e["action"] == "change_colour" else SYNTHETIC_EFFECTS.get(
        e["action"])
    out.append(Event(actor, action, float(e["start_frame"]), float(e["end_frame"]), effect))
  return out


def events_from_timed_captions(timed: Iterable[Mapping], actor: str) -> list[Event]:
  """VidLN `timed_caption` utterances of one actor ({"utterance","start_time","end_time"})."""
  out = []
  for u in timed:
    text = str(u["utterance"]).strip().rstrip(".")
    subject, action = _split_subject(text, actor)
    out.append(Event(subject, action, float(u["start_time"]), float(u["end_time"])))
  return out


def _split_subject(text: str, actor: str) -> tuple[str, str]:
  if text.lower().startswith(actor.lower() + " "):
    return text[:len(actor)], text[len(actor) + 1:]
  # An utterance that does not name its actor ("picks up the ball") reads as the actor's action.
  return actor, text


def _in_time_order(events: Sequence[Event]) -> list[Event]:
  return sorted(events, key=lambda e: (e.start, e.end))


def _join(texts: Sequence[str]) -> str:
  return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def describe(events: Sequence[Event]) -> str:
  """A detailed description: simultaneous events joined by "and", successive ones by "then"."""
  groups: dict[float, list[str]] = {}
  for e in _in_time_order(events):
    groups.setdefault(e.start, []).append(e.text)
  return ", then ".join(_join(texts) for _, texts in sorted(groups.items()))


def template_instructions(events: Sequence[Event]) -> list[Instruction]:
  """Every instruction the templates can make from `events` (deterministic, in KINDS order)."""
  events = _in_time_order(events)
  if not events:
    return []
  out = [Instruction("describe", DESCRIBE_PROMPTS[0], describe(events))]
  by_actor: dict[str, list[Event]] = {}
  for e in events:
    by_actor.setdefault(e.actor, []).append(e)
  for actor, own in by_actor.items():
    if len(own) >= 2:
      out.append(Instruction("first", f"what does {actor} do first?", own[0].action))
      out.append(Instruction("last", f"what does {actor} do last?", own[-1].action))
    for prev, nxt in zip(own, own[1:]):
      out.append(Instruction("after", f"what does {actor} do after it {prev.action}?", nxt.action))
      out.append(Instruction("before", f"what does {actor} do before it {nxt.action}?", prev.action))
  for e in events:
    if e.effect:
      # Only when no later action of the same actor undoes the state, so the answer is the cause.
      later = [x for x in by_actor[e.actor] if x.start > e.start]
      if not later:
        out.append(Instruction("cause", f"why is {e.actor} {e.effect} at the end?",
                               f"because it {e.action}"))
  out.append(Instruction("count_objects", "how many objects are there?", _number(len(by_actor))))
  for actor, own in by_actor.items():
    out.append(Instruction("count_actions", f"how many things does {actor} do?",
                           _number(len(own))))
  return out


def _number(n: int) -> str:
  return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


@dataclasses.dataclass(frozen=True)
class TemplateSynthesizer:
  """Draws up to `per_video` template instructions, the description always first when asked."""
  per_video: int = 4
  always_describe: bool = True

  def __call__(self, events: Sequence[Event], rng: np.random.Generator) -> list[Instruction]:
    pool = template_instructions(events)
    if not pool:
      return []
    head = [pool[0]] if self.always_describe else []
    rest = pool[1:] if self.always_describe else pool
    if head:
      prompt = DESCRIBE_PROMPTS[int(rng.integers(len(DESCRIBE_PROMPTS)))]
      head = [dataclasses.replace(head[0], instruction=prompt)]
    picked = rng.permutation(len(rest))[:max(0, self.per_video - len(head))]
    return head + [rest[i] for i in sorted(picked)]


LLM_PROMPT = """You write question-answer pairs about a video from its narrative.
Narrative (in time order):
{narrative}

Write {num} pairs that need the order of events, their causes, or counting to answer, plus one
detailed description. One pair per two lines, exactly:
Q: <question>
A: <answer>
"""

_QA_LINE = re.compile(r"^\s*Q:\s*(?P<q>.+?)\s*\n\s*A:\s*(?P<a>.+?)\s*$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class LLMSynthesizer:
  """Instructions from any LLM: `generate(prompt) -> text` with "Q: ...\\nA: ..." pairs.

  Pairs the LLM writes in another layout are dropped; if none parse, the template synthesizer's
  output is used instead so a flaky model never yields an empty example.
  """
  generate: Callable[[str], str]
  per_video: int = 4
  prompt_template: str = LLM_PROMPT
  fallback: Synthesizer | None = None  # None: templates, `per_video` of them.

  def __call__(self, events: Sequence[Event], rng: np.random.Generator) -> list[Instruction]:
    narrative = "\n".join(f"- {e.text}" for e in _in_time_order(events))
    text = self.generate(self.prompt_template.format(narrative=narrative, num=self.per_video))
    pairs = [Instruction("llm", m["q"], m["a"]) for m in _QA_LINE.finditer(text or "")]
    if pairs:
      return pairs[:self.per_video]
    fallback = self.fallback or TemplateSynthesizer(per_video=self.per_video)
    return fallback(events, rng)


def synthesize(videos: Iterable[tuple[str, Sequence[Event]]], synthesizer: Synthesizer, *,
               seed: int) -> Iterable[dict]:
  """Rows {"id", "kind", "instruction", "answer"} for every video; deterministic for `seed`.

  Each video's generator is seeded from (seed, its position), so adding videos at the end does not
  change earlier rows.
  """
  for index, (video_id, events) in enumerate(videos):
    rng = np.random.default_rng([seed, index])
    for ins in synthesizer(events, rng):
      yield {"id": video_id, "kind": ins.kind, "instruction": ins.instruction, "answer": ins.answer}
