"""The world's text corpus and its SentencePiece vocabulary (DIR/vocab.model).

Every sentence a model may read or write in the world: all caption kinds of every split, the QA
questions and candidates, and the stage-2 instructions and answers synthesised from the narratives
(vidistill/data/instructions.py), plus the prompts. The vocabulary is part of the world, written
before DONE, so that every stage of a run shares the same token ids.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from vidistill.data import instructions
from vidistill.data import vocab as vocab_lib

VOCAB_FILE = "vocab.model"
# Task prompts (configs/train/*.py, configs/caption/*.py): in the corpus so they tokenise compactly.
PROMPTS = ("caption en:", "describe the video in detail.", "answer en:", "describe:", "caption:")


def record_texts(record: Mapping[str, Any]) -> Iterator[str]:
  """Every sentence of one truth record (any split)."""
  for key in ("caption", "gold_caption", "short_caption", "alt_text", "narrative"):
    if record.get(key):
      yield record[key]
  for key in ("gold_captions", "frame_captions"):
    yield from record.get(key) or ()
  for actor in record.get("actor_narratives") or ():
    yield actor["caption"]
  for q in record.get("questions") or ():
    yield q["question"]
    yield from q["candidates"]
  if record.get("events"):
    for ins in instructions.template_instructions(
        instructions.events_from_synthetic(record["events"])):
      yield ins.instruction
      yield ins.answer


def sentences(truth: Mapping[str, Sequence[Mapping[str, Any]]]) -> Iterator[str]:
  """The corpus, in a fixed order (splits sorted, records in file order)."""
  yield from PROMPTS
  yield from instructions.DESCRIBE_PROMPTS
  for split in sorted(truth):
    for record in truth[split]:
      yield from record_texts(record)


def train_vocabulary(texts: Iterable[str], path: str, vocab_size: int) -> str:
  return vocab_lib.train_sentencepiece(texts, path, vocab_size=vocab_size)
