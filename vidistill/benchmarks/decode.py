"""Decode throughput: our jitted cached greedy/beam decode against Hugging Face T5 `generate`.

Same weights in both (a random HF `T5ForConditionalGeneration`, saved as safetensors and read by
our importer vidistill/convert/t5.py), same CPU, batch 1/8/32, a fixed output length (our EOS id
set to -1 and HF's `min_new_tokens`, so neither stops early). Also against our own no-cache
decode (the decoder re-run over the whole prefix each step), and the time per token at output
length 8 vs 64 (the cache makes a step's cost independent of the position).
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vidistill.benchmarks import decode_vs_hf
from vidistill.benchmarks import report
from vidistill.benchmarks import timing
from vidistill.convert import t5 as convert_t5
from vidistill.models import decoding
from vidistill.models import t5 as t5_lib

SIZES = {
    # HF T5Config fields. full: t5-v1_1-small's shape with a 8k vocabulary.
    "short": dict(hf=dict(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
                  batches=(4,), lengths=(8,), flat_lengths=(4, 8), beam_batches=(4,),
                  input_len=8, repeats=2),
    "full": dict(hf=dict(vocab_size=8192, d_model=512, d_kv=64, d_ff=1024, num_layers=8,
                         num_heads=6),
                 batches=(1, 8, 32), lengths=(16, 64), flat_lengths=(8, 64), beam_batches=(1, 8),
                 input_len=32, repeats=3),
}
NEVER = -1  # An EOS id no token equals: decode always runs max_len steps.


def make_hf_model(fields: dict[str, Any], seed: int = 0):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  config = transformers.T5Config(**fields, feed_forward_proj="gated-gelu", dropout_rate=0.0,
                                 tie_word_embeddings=False, decoder_start_token_id=0,
                                 pad_token_id=0, eos_token_id=1)
  return transformers.T5ForConditionalGeneration(config).eval()


def import_weights(hf_model) -> tuple[t5_lib.T5Config, Any]:
  """Our (config, params) from the HF model, through the safetensors importer."""
  with tempfile.TemporaryDirectory() as tmp:
    hf_model.save_pretrained(tmp)
    config, params = convert_t5.load_hf(tmp)
  return config, jax.tree.map(jnp.asarray, params)


def make_decoders(config: t5_lib.T5Config):
  """jitted `(params, tokens [B, S]) -> sequences` for cached greedy, no-cache greedy, beam."""
  model = t5_lib.T5(config)

  def encode(params, tokens, max_len):
    encoded, mask = model.apply({"params": params}, tokens, method=t5_lib.T5.encode)
    return model.apply({"params": params}, encoded, mask, max_len, method=t5_lib.T5.init_cache)

  def cached_step(params):
    return lambda s: model.apply({"params": params}, s.cur_token, s.cache, s.static, s.step,
                                 method=t5_lib.T5.decode_step)

  def greedy(params, tokens, max_len):
    cache, static = encode(params, tokens, max_len)
    return decoding.greedy(cached_step(params), batch_size=tokens.shape[0], max_len=max_len,
                           cache=cache, static=static, eos_id=NEVER)[0]

  def no_cache(params, tokens, max_len):
    encoded, mask = model.apply({"params": params}, tokens, method=t5_lib.T5.encode)

    def full_recompute(s):  # The whole decoder over all max_len positions, every step.
      logits = model.apply({"params": params}, s.static[0], s.static[1],
                           t5_lib.shift_right(s.sequences), method=t5_lib.T5.decode)
      return jax.lax.dynamic_index_in_dim(logits, s.step, 1, keepdims=False), s.cache
    return decoding.greedy(full_recompute, batch_size=tokens.shape[0], max_len=max_len,
                           static=(encoded, mask), eos_id=NEVER)[0]

  def beam(params, tokens, max_len, beam_size):
    cache, static = encode(params, tokens, max_len)
    return decoding.beam_search(cached_step(params), batch_size=tokens.shape[0],
                                max_len=max_len, beam_size=beam_size, cache=cache,
                                static=static, eos_id=NEVER)[0][:, 0]

  def encode_only(params, tokens, max_len):
    return encode(params, tokens, max_len)

  static = ("max_len",)
  return {"greedy": jax.jit(greedy, static_argnames=static),
          "no_cache": jax.jit(no_cache, static_argnames=static),
          "beam": jax.jit(beam, static_argnames=static + ("beam_size",)),
          "encode": jax.jit(encode_only, static_argnames=static)}


def _hf_generate(hf_model, tokens: np.ndarray, length: int, beams: int = 1) -> np.ndarray:
  """HF's answer tokens [B, length] (its decoder start token dropped)."""
  import torch  # pylint: disable=g-import-not-at-top
  ids = torch.tensor(tokens, dtype=torch.long)
  with torch.inference_mode():
    out = hf_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                            max_new_tokens=length, min_new_tokens=length, num_beams=beams,
                            do_sample=False, early_stopping=False)
  return out.numpy()[:, 1:]


def run(full: bool = False) -> report.Result:
  s = SIZES["full" if full else "short"]
  hf_model, params, fns = decode_vs_hf.hf_and_ours(s["hf"], make_hf_model, import_weights,
                                                   make_decoders)
  rng, reps = np.random.default_rng(0), s["repeats"]
  size = f"T5 d{s['hf']['d_model']} L{s['hf']['num_layers']} V{s['hf']['vocab_size']}"

  def tokens_for(batch):
    return rng.integers(2, s["hf"]["vocab_size"], (batch, s["input_len"]), dtype=np.int32)

  def greedy(tokens, n):
    return fns["greedy"](params, tokens, max_len=n)

  inputs = {batch: tokens_for(batch) for batch in s["batches"]}
  figures, details = decode_vs_hf.greedy_against_hf(
      "decode", greedy, lambda tokens, n: _hf_generate(hf_model, tokens, n), inputs,
      s["lengths"], repeats=reps, note=size, goals={32: 3.0} if full else None)
  details["sizes"] = s

  # No-cache costs O(length^2) decoder passes (minutes at 64 tokens, batch 32 on a CPU), so it is
  # measured at the shortest length only, where it is the most favourable to it.
  length = s["lengths"][0]
  for batch, tokens in inputs.items():
    n = batch * length
    nocache = timing.median_seconds(lambda: fns["no_cache"](params, tokens, max_len=length),
                                    repeats=1)
    measured = details["tokens_per_s"][f"b{batch}_l{length}"]
    measured["no_cache"] = n / nocache
    figures.append(report.Figure(
        "decode", f"cached greedy, batch {batch}, {length} tokens", measured["ours"],
        "our no-cache decode", n / nocache, unit="tok/s", note=size))

  beams = 4
  for batch in s["beam_batches"]:
    tokens = tokens_for(batch)
    ours = timing.median_seconds(
        lambda: fns["beam"](params, tokens, max_len=length, beam_size=beams), repeats=reps)
    hf = timing.median_seconds(lambda: _hf_generate(hf_model, tokens, length, beams),
                               repeats=reps)
    n = batch * length
    figures.append(report.Figure(
        "decode", f"beam {beams}, batch {batch}, {length} tokens", n / ours, "HF generate",
        n / hf, unit="tok/s", note=size))

  figure, details["seconds_per_token"] = decode_vs_hf.flat_per_token(
      "decode", greedy, lambda tokens, n: fns["encode"](params, tokens, max_len=n),
      tokens_for(s["batches"][-1]), s["flat_lengths"], repeats=reps,
      goal=1.2 if full else None, setup_name="encoder")
  figures.append(figure)
  details["torch_threads"] = _torch_threads()
  return report.Result("decode", figures, details)


def _torch_threads() -> int:
  import torch  # pylint: disable=g-import-not-at-top
  return int(torch.get_num_threads())
