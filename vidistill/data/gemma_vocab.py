"""The Gemma / PaliGemma SentencePiece vocabulary from a local file, and PaliGemma's prompt format.

Gemma's ids: 0 = pad, 1 = EOS, 2 = BOS, 3 = UNK; pad and EOS agree with T5's, so the data pipeline
tokenises prompts and answers for a PaliGemma model exactly as for a T5 one (ids + EOS, 0-padded).
PaliGemma's tokenizer (`paligemma_tokenizer.model`, 257,152 pieces) is Gemma's plus 1024
location tokens `<loc0000>`..`<loc1023>` and 128 segmentation tokens `<seg000>`..`<seg127>`.

Prompt format (big_vision and Hugging Face's PaliGemmaProcessor): the prefix is
`[image tokens] <bos> prompt "\\n"`, the answer follows, then `<eos>`; a captioning prompt is
"caption en". `prompt_ids` gives the ids the model needs to rebuild that from the pipeline's
tokens (models/paligemma.py drops the EOS, prepends BOS and starts the answer with "\\n").
"""
from __future__ import annotations

from typing import Any

import seqio

from vidistill.data import vocab as vocab_lib

BOS_ID = 2
SEPARATOR = "\n"
CAPTION_PROMPT = "caption {lang}"


def load_gemma_vocabulary(model_path: str) -> seqio.SentencePieceVocabulary:
  """A seqio vocabulary over Gemma's / PaliGemma's `tokenizer.model`; checks its special ids."""
  vocab = vocab_lib.load_vocabulary(model_path)
  processor = vocab.tokenizer
  if processor.bos_id() != BOS_ID:
    raise vocab_lib.VocabularyError(
        f"{model_path!r} has bos_id={processor.bos_id()}; Gemma's tokenizer has BOS {BOS_ID}: "
        "point the config at PaliGemma's tokenizer.model")
  separator_id(vocab)
  return vocab


def separator_id(vocab: Any) -> int:
  """The id of the single piece "\\n" that ends a PaliGemma prefix."""
  ids = list(vocab.tokenizer.EncodeAsIds(SEPARATOR))
  piece = vocab.tokenizer.PieceToId(SEPARATOR)
  if piece != vocab.tokenizer.unk_id():
    return int(piece)
  if len(ids) == 1:
    return int(ids[0])
  raise vocab_lib.VocabularyError(
      f"the vocabulary has no single piece for '\\n' (it encodes as {ids}); PaliGemma's prompt "
      "format needs one: use Gemma's tokenizer.model")


def prompt_ids(vocab: Any) -> dict[str, int]:
  """`{"bos_id", "start_id"}` for models/paligemma.make_model from a Gemma vocabulary."""
  return {"bos_id": BOS_ID, "start_id": separator_id(vocab)}


def prefix_tokens(vocab: Any, prompt: str) -> list[int]:
  """`<bos> prompt "\\n"` as Hugging Face's PaliGemmaProcessor tokenises it (without the image
  tokens): the reference the model's rebuilt prefix is checked against."""
  return [BOS_ID] + list(vocab.encode(prompt)) + [separator_id(vocab)]
