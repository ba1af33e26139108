"""PaliGemma / PaliGemma 2 as a video VLM: video tokens and the prompt as one bidirectional prefix
of a decoder-only Gemma, the answer causal after it (prefix-LM; Beyer et al. 2024, 2407.07726).

    video [B,T,H,W,3] -> VideoEncoder (SigLIP per frame) -> [B,N,D_vit] -> projection -> [B,N,D]
    prompt_tokens [B,Lp] -> [BOS] + prompt -> Gemma embedding (x sqrt(D)) ----------> [B,1+Lp,D]
    sequence = [video tokens ; BOS prompt ; SEP answer...]   (SEP = the decoder's start token)

The prefix block (video, BOS, prompt and the separator that ends it, "\\n" in PaliGemma's format
"caption en\\n") attends bidirectionally; answer tokens attend causally; the loss is on the answer
only. Prompt tokens arrive as the data pipeline makes them for every model (ids + EOS, 0-padded):
the EOS is dropped here and the separator is the first decoder input, so the sequence equals
Hugging Face's `[image tokens] <bos> prompt \\n answer` up to padding, which is masked and skipped
by the RoPE positions. Image tokens are not scaled by sqrt(D) (only text embeddings are), as in
big_vision and Hugging Face.

Parameters: `video_encoder/...` (VideoEncoder: `image` = the SigLIP ViT, `temporal_embedding` zero
at init, so an image checkpoint is the video model at initialisation), `visual_projection/{kernel,
bias}`, `llm/...` (gemma.py). Stage configs freeze by these prefixes.

`make_model` returns a vlm.VideoLanguageModel, so training, captioning, evaluation and decoding
(greedy, beam, sampling, scoring) drive it exactly as they drive the T5 VLM. Decoding fills the
cache with the whole prefix (separator included) in one pass, then runs one token a step; step 0
recomputes the separator as a prefix token, which rewrites its cache slot with the same values.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.models import gemma as gemma_lib
from vidistill.models import vlm

Array = jax.Array

NEWLINE_ID = 108  # "\n" in Gemma's SentencePiece vocabulary: PaliGemma's prefix separator


class PaliGemmaModule(nn.Module):
  """`video_encoder` maps `(video, train=) -> (tokens [B, N, D_vit], aux)`.

  bos_id: prepended to the prompt (None: nothing, for vocabularies without BOS).
  eos_id: the prompt's end marker from the data pipeline, dropped.
  start_id: the separator after the prompt, also the first decoder input.
  """
  video_encoder: nn.Module
  gemma_config: gemma_lib.GemmaConfig
  bos_id: int | None = gemma_lib.BOS_ID
  eos_id: int = gemma_lib.EOS_ID
  start_id: int = NEWLINE_ID

  def setup(self):
    cfg = self.gemma_config
    self.visual_projection = vlm.visual_projection(cfg.width, cfg)
    self.llm = gemma_lib.Gemma(cfg)

  def prompt_ids(self, prompt_tokens: Array) -> Array:
    """`[B, Lp]` (ids + EOS, 0-padded) -> `[B, Lp (+1 with BOS)]`: BOS first, EOS -> padding."""
    tokens = jnp.where(prompt_tokens == self.eos_id, gemma_lib.PAD_ID, prompt_tokens)
    if self.bos_id is None:
      return tokens
    bos = jnp.full(tokens.shape[:1] + (1,), self.bos_id, tokens.dtype)
    return jnp.concatenate([bos, tokens], axis=1)

  def encode(self, video: Array, prompt_tokens: Array, *, train: bool = False
             ) -> tuple[Array, Array, dict[str, Any]]:
    """-> `(prefix [B, P, D] embedded, valid [B, P] bool, vision aux)`, P = N + Lp (+1)."""
    tokens, vision_aux = self.video_encoder(vlm.video_to_float(video), train=train)
    image = self.visual_projection(tokens).astype(self.gemma_config.dtype)
    text = self.prompt_ids(prompt_tokens)
    x = jnp.concatenate([image, self.llm.embed(text)], axis=1)
    valid = jnp.concatenate([jnp.ones(image.shape[:2], bool), text != gemma_lib.PAD_ID], axis=1)
    return x, valid, vision_aux

  def _with_decoder(self, prefix: Array, prefix_valid: Array, decoder_input_tokens: Array):
    b, p = prefix_valid.shape
    length = decoder_input_tokens.shape[1]
    x = jnp.concatenate([prefix, self.llm.embed(decoder_input_tokens)], axis=1)
    valid = jnp.concatenate([prefix_valid, jnp.ones((b, length), bool)], axis=1)
    # The first decoder input is the separator, the prefix block's last token.
    in_prefix = jnp.arange(p + length) <= p
    return x, valid, jnp.broadcast_to(in_prefix, (b, p + length)), gemma_lib.positions_from_valid(
        valid)

  def decode(self, prefix: Array, prefix_valid: Array, decoder_input_tokens: Array, *,
             train: bool = False) -> Array:
    """Teacher-forced answer logits `[B, L, V]` for `decoder_input_tokens [B, L]` (shifted right
    from `start_id`)."""
    del train  # no dropout in Gemma
    x, valid, in_prefix, positions = self._with_decoder(prefix, prefix_valid, decoder_input_tokens)
    logits, _ = self.llm(x, positions, valid, in_prefix)
    return logits[:, prefix.shape[1]:]

  def __call__(self, video: Array, prompt_tokens: Array, decoder_input_tokens: Array, *,
               train: bool = False) -> tuple[Array, dict[str, Any]]:
    prefix, valid, vision_aux = self.encode(video, prompt_tokens, train=train)
    logits = self.decode(prefix, valid, decoder_input_tokens, train=train)
    return logits, {"encoded": prefix, "encoder_mask": valid, "vision": vision_aux}

  def init_cache(self, prefix: Array, prefix_valid: Array, max_len: int
                 ) -> tuple[Any, dict[str, Array]]:
    """Prefills the cache with `[prefix ; separator]`; cache slots `[B, P + max_len, K, H]`.

    `static` (per row): "positions", "valid", "prefix" of every cache slot [B, P + max_len],
    "start_position" [B] (the separator's RoPE position), "start_index" [B] (its slot, P).
    """
    b, p = prefix_valid.shape
    start = jnp.full((b, 1), self.start_id, jnp.int32)
    x, valid, in_prefix, positions = self._with_decoder(prefix, prefix_valid, start)
    cache = self.llm.prefill(x, positions, valid, in_prefix, p + max_len)
    start_position = positions[:, -1]
    static = {
        "positions": jnp.concatenate(
            [positions[:, :p], start_position[:, None] + jnp.arange(max_len)], axis=1),
        "valid": jnp.concatenate([prefix_valid, jnp.ones((b, max_len), bool)], axis=1),
        "prefix": jnp.broadcast_to(jnp.arange(p + max_len) <= p, (b, p + max_len)),
        "start_position": start_position,
        "start_index": jnp.full((b,), p, jnp.int32),
    }
    return cache, static

  def decode_step(self, tokens: Array, cache: Any, static: dict[str, Array],
                  step: Array) -> tuple[Array, Any]:
    """Logits `[N, V]` for decoder input `tokens [N]` at answer step `step`; the updated cache."""
    # Step 0 reruns the separator, the prefix block's last token: in Gemma 2's local layers it
    # sees the whole prefix (not only its window), as in the prefill.
    return self.llm.decode_step(tokens, static["start_position"] + step, cache, static,
                                static["start_index"][0] + step, in_prefix=step == 0)


def make_model(video_encoder: nn.Module, gemma_variant: str | gemma_lib.GemmaConfig, *,
               z_loss: float = 0.0, bos_id: int | None = gemma_lib.BOS_ID,
               start_id: int = NEWLINE_ID, eos_id: int = gemma_lib.EOS_ID,
               **gemma_overrides: Any) -> vlm.VideoLanguageModel:
  """`make_model(VideoEncoder(...), "gemma2_2b", vocab_size=257152)`: the model API."""
  if isinstance(gemma_variant, gemma_lib.GemmaConfig):
    cfg = dataclasses.replace(gemma_variant, **gemma_overrides)
  else:
    cfg = gemma_lib.decode_variant(gemma_variant, **gemma_overrides)
  module = PaliGemmaModule(video_encoder, cfg, bos_id=bos_id, eos_id=eos_id, start_id=start_id)
  return vlm.VideoLanguageModel(module, z_loss=z_loss, start_id=start_id)
