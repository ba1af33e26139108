"""Text vocabularies: a SentencePiece model trained on the synthetic world, or a real T5/UL2 one.

Token ids follow T5's convention, which the models and decoding rely on: 0 = pad (also the decoder's
start id), 1 = EOS, 2 = UNK. Byte fallback is on, so a word the corpus never had (an LLM-written
instruction, a typo in a real caption) becomes bytes instead of UNK and survives decoding.
"""
from __future__ import annotations

import io
import os
import tempfile
from typing import Iterable

import seqio
import sentencepiece as spm

from vidistill import fs

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2


class VocabularyError(ValueError):
  """A vocabulary file is missing or not a SentencePiece model."""


def train_sentencepiece(sentences: Iterable[str], model_path: str, *, vocab_size: int = 1000,
                        model_type: str = "unigram") -> str:
  """Trains a T5-compatible SentencePiece model on `sentences`; writes `model_path` atomically.

  Training is single-threaded with input shuffling off so that the same corpus gives the same model
  bytes (the synthetic world is deterministic for a seed, and so is its vocabulary).
  """
  sentences = [s.strip() for s in sentences if s and s.strip()]
  if not sentences:
    raise VocabularyError(f"no sentences to train the vocabulary {model_path!r} on")
  directory = os.path.dirname(os.path.abspath(model_path))
  os.makedirs(directory, exist_ok=True)
  # The model is written to memory: a file prefix would be recorded in the model (its trainer
  # spec), so models trained in different temp dirs would differ in their bytes.
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
      model_type=model_type, pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1,
      byte_fallback=True, character_coverage=1.0, num_threads=1, shuffle_input_sentence=False,
      input_sentence_size=0, hard_vocab_limit=False, split_digits=True,
      normalization_rule_name="nmt_nfkc", minloglevel=2)
  with tempfile.NamedTemporaryFile(dir=directory, delete=False) as f:
    f.write(model.getvalue())
  os.replace(f.name, model_path)
  return model_path


def load_vocabulary(model_path: str, extra_ids: int = 0) -> seqio.SentencePieceVocabulary:
  """A seqio vocabulary over a SentencePiece model file (ours, or T5/UL2's `spiece.model`)."""
  if not fs.exists(model_path):
    raise VocabularyError(
        f"SentencePiece model {model_path!r} does not exist; for the synthetic world it is written by"
        " `vidistill data synth`, for real models point the config at the T5/UL2 spiece.model")
  processor = spm.SentencePieceProcessor()
  try:
    if fs.is_remote(model_path):  # gs://: SentencePiece reads local files only; seqio uses gfile.
      with fs.open(model_path, "rb") as f:
        processor.LoadFromSerializedProto(f.read())
    else:
      processor.Load(model_path)
  except (OSError, RuntimeError) as e:
    raise VocabularyError(f"{model_path!r} is not a SentencePiece model: {e}") from None
  if processor.pad_id() != PAD_ID or processor.eos_id() != EOS_ID:
    raise VocabularyError(
        f"{model_path!r} has pad_id={processor.pad_id()} eos_id={processor.eos_id()}; vidistill's "
        f"models expect T5's pad=0, eos=1")
  return seqio.SentencePieceVocabulary(model_path, extra_ids=extra_ids)
