"""Tests for vidistill/data/gemma_vocab.py on a tiny SentencePiece model with Gemma's special ids
(pad 0, EOS 1, BOS 2, UNK 3) and "\\n" / location tokens as pieces, as in PaliGemma's tokenizer."""
import io

import jax.numpy as jnp
import numpy as np
import pytest
import sentencepiece as spm

from vidistill.data import gemma_vocab, vocab as vocab_lib
from vidistill.models import dual_encoder_model, gemma, paligemma

SENTENCES = ["caption en", "a person opens the door", "the cat sits on a red mat",
             "answer en what is the person doing", "a dog runs across the field"] * 20


def _train(path, **special):
  model = io.BytesIO()
  ids = dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3)
  ids.update(special)
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(SENTENCES), model_writer=model, vocab_size=80, model_type="unigram",
      user_defined_symbols=["\n", "<loc0000>", "<seg000>"], normalization_rule_name="identity",
      remove_extra_whitespaces=False, byte_fallback=False, num_threads=1, minloglevel=2,
      hard_vocab_limit=False, **ids)
  path.write_bytes(model.getvalue())
  return str(path)


@pytest.fixture(scope="module")
def gemma_like(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("vocab") / "tokenizer.model")


def test_loads_and_finds_the_separator(gemma_like):
  vocab = gemma_vocab.load_gemma_vocabulary(gemma_like)
  sep = gemma_vocab.separator_id(vocab)
  assert vocab.tokenizer.IdToPiece(sep) == "\n"
  assert gemma_vocab.prompt_ids(vocab) == {"bos_id": 2, "start_id": sep}
  assert vocab.decode(list(vocab.encode("<loc0000>"))) == "<loc0000>"


def test_model_prefix_equals_the_processor_format(gemma_like):
  """Pipeline tokens (ids + EOS, padded) -> the model's `<bos> prompt` + the separator it starts
  the answer with == `<bos> prompt "\\n"`, Hugging Face's PaliGemmaProcessor prefix."""
  vocab = gemma_vocab.load_gemma_vocabulary(gemma_like)
  prompt = gemma_vocab.CAPTION_PROMPT.format(lang="en")
  tokens = dual_encoder_model.tokenize([prompt], vocab, 12)
  ids = gemma_vocab.prompt_ids(vocab)
  module = paligemma.PaliGemmaModule(None, gemma.decode_variant("gemma_tiny"), **ids)
  rebuilt = [int(t) for t in np.asarray(module.prompt_ids(jnp.asarray(tokens)))[0] if t != 0]
  assert rebuilt + [ids["start_id"]] == gemma_vocab.prefix_tokens(vocab, prompt)
  assert gemma_vocab.prefix_tokens(vocab, prompt)[0] == 2


def test_a_vocabulary_without_bos_is_refused(tmp_path):
  path = _train(tmp_path / "t5like.model", bos_id=-1, unk_id=2)
  with pytest.raises(vocab_lib.VocabularyError, match="bos_id=-1"):
    gemma_vocab.load_gemma_vocabulary(path)
