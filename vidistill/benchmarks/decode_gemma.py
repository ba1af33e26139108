"""Decode throughput of the decoder-only Gemma: our jitted cached greedy decode against Hugging
Face `GemmaForCausalLM.generate` on the same weights.

The prompt (P tokens) is prefilled in one pass, then one token a step over the KV cache, as the
PaliGemma VLM decodes (models/paligemma.py); HF gets the same prompt plus the start token and
`min_new_tokens` so neither side stops early (our EOS id is set to -1). Batch 1 and 32; the time
per generated token at a short and a long output (prefill subtracted): the cache keeps a step's
cost flat in the position.
"""
from __future__ import annotations

import tempfile
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidistill.benchmarks import decode_vs_hf
from vidistill.benchmarks import report
from vidistill.convert import paligemma as convert
from vidistill.models import decoding
from vidistill.models import gemma

SIZES = {
    # HF GemmaConfig fields. full: a Gemma-2B-shaped block (MQA, GeGLU) at 1/4 width, 8 layers.
    "short": dict(hf=dict(vocab_size=128, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                          head_dim=8),
                  batches=(4,), lengths=(8,), flat_lengths=(4, 8), prompt_len=8, repeats=2),
    "full": dict(hf=dict(vocab_size=8192, hidden_size=512, intermediate_size=4096,
                         num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=1,
                         head_dim=64),
                 batches=(1, 32), lengths=(32,), flat_lengths=(8, 64), prompt_len=32,
                 repeats=3),
}
NEVER = -1  # An EOS id no token equals: decode always runs max_len steps.
START = 2  # The first decoder input after the prompt (what PaliGemma's separator is).


def make_hf_model(fields: dict[str, Any], seed: int = 0):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = transformers.GemmaForCausalLM(transformers.GemmaConfig(**fields)).eval()
  with torch.no_grad():  # HF's 0.02 embedding init gives near-uniform logits: ties in argmax
    model.model.embed_tokens.weight.mul_(20.0)
  return model


def import_weights(hf_model) -> tuple[gemma.GemmaConfig, Any]:
  """Our (config, params) from the HF model, through the safetensors importer."""
  config = convert.gemma_config_from_hf(hf_model.config.to_dict())
  b = (1, 2)
  shapes = jax.eval_shape(lambda: gemma.Gemma(config).init(
      jax.random.key(0), jnp.zeros(b + (config.width,)), jnp.zeros(b, jnp.int32),
      jnp.ones(b, bool), jnp.zeros(b, bool)))["params"]
  with tempfile.TemporaryDirectory() as tmp:
    hf_model.save_pretrained(tmp)
    params = convert.gemma_from_hf(tmp, nn.meta.unbox(shapes))
  return config, jax.tree.map(jnp.asarray, params)


def make_decoders(config: gemma.GemmaConfig):
  """jitted `(params, prompt [B, P], max_len) -> sequences [B, max_len]` and the prefill alone."""
  model = gemma.Gemma(config)

  def prefill(params, prompt, max_len):
    b, p = prompt.shape
    x = model.apply({"params": params}, prompt, method=gemma.Gemma.embed)
    positions = jnp.broadcast_to(jnp.arange(p), (b, p))
    valid = jnp.ones((b, p), bool)
    cache = model.apply({"params": params}, x, positions, valid, ~valid, p + max_len,
                        method=gemma.Gemma.prefill)
    static = {"positions": jnp.broadcast_to(jnp.arange(p + max_len), (b, p + max_len)),
              "valid": jnp.ones((b, p + max_len), bool),
              "prefix": jnp.zeros((b, p + max_len), bool)}
    return cache, static

  def greedy(params, prompt, max_len):
    cache, static = prefill(params, prompt, max_len)
    p = prompt.shape[1]

    def step(s):
      return model.apply({"params": params}, s.cur_token, p + s.step + jnp.zeros_like(s.cur_token),
                         s.cache, s.static, p + s.step, method=gemma.Gemma.decode_step)
    return decoding.greedy(step, batch_size=prompt.shape[0], max_len=max_len, cache=cache,
                           static=static, eos_id=NEVER, start_id=START)[0]

  static = ("max_len",)
  return {"greedy": jax.jit(greedy, static_argnames=static),
          "prefill": jax.jit(prefill, static_argnames=static)}


def _hf_generate(hf_model, prompt: np.ndarray, length: int) -> np.ndarray:
  """HF's answer tokens [B, length] after the prompt and the start token."""
  import torch  # pylint: disable=g-import-not-at-top
  ids = torch.tensor(np.concatenate([prompt, np.full((len(prompt), 1), START)], 1),
                     dtype=torch.long)
  with torch.inference_mode():
    out = hf_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                            max_new_tokens=length, min_new_tokens=length, do_sample=False)
  return out[:, ids.shape[1]:].numpy()


def run(full: bool = False) -> report.Result:
  s = SIZES["full" if full else "short"]
  hf_model, params, fns = decode_vs_hf.hf_and_ours(s["hf"], make_hf_model, import_weights,
                                                   make_decoders)
  rng, reps = np.random.default_rng(0), s["repeats"]
  hf = s["hf"]
  size = (f"Gemma d{hf['hidden_size']} L{hf['num_hidden_layers']} H{hf['num_attention_heads']}"
          f"/KV{hf['num_key_value_heads']} V{hf['vocab_size']}, prompt {s['prompt_len']}")

  def prompt_for(batch):
    return rng.integers(3, hf["vocab_size"], (batch, s["prompt_len"]), dtype=np.int32)

  def greedy(prompt, n):
    return fns["greedy"](params, prompt, max_len=n)

  figures, details = decode_vs_hf.greedy_against_hf(
      "decode_gemma", greedy, lambda prompt, n: _hf_generate(hf_model, prompt, n),
      {batch: prompt_for(batch) for batch in s["batches"]}, s["lengths"], repeats=reps,
      note=size)
  figure, details["seconds_per_token"] = decode_vs_hf.flat_per_token(
      "decode_gemma", greedy, lambda prompt, n: fns["prefill"](params, prompt, max_len=n),
      prompt_for(s["batches"][-1]), s["flat_lengths"], repeats=reps,
      goal=1.2 if full else None, setup_name="prefill")
  details["sizes"] = s
  return report.Result("decode_gemma", figures + [figure], details)
