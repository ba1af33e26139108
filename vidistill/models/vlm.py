"""PaLI-style video-language model: video tokens as an encoder prefix of a T5/UL2 encoder-decoder.

    video [B,T,H,W,3] -> VideoEncoder -> tokens [B,N,D_vit] -> visual_projection -> [B,N,D]
                                                                      | concat
    prompt_tokens [B,Lp] -> token_embedder -----------------------> [B,Lp,D] -> T5 encoder
                                                  T5 decoder (teacher forcing / KV-cache decode)

The encoder sees `[visual tokens; prompt]` with one attention mask: visual tokens always valid,
prompt padding (id 0) masked (PaLI, PaLI-3 Sec. 2). The decoder writes the answer.

Parameters: `video_encoder/...` (the VideoEncoder's own tree), `visual_projection/{kernel,bias}`,
`t5/{token_embedder,encoder,decoder}/...` (t5.py's t5x layout). Stage configs freeze by these
prefixes: visual adaptation trains `video_encoder` (+ projection), language adaptation `t5`.

`VideoLanguageModel` wraps the flax module with the t5x-style model API (`init`, `loss_fn`,
`predict_batch`, `score_batch`) that the trainer, the captioning job and the evaluators drive.
A batch is a dict: "video" [B,T,H,W,3] uint8 (or float in [-1, 1]), "prompt_tokens" [B,Lp] int32,
"target_tokens" [B,Lt] int32 (0 = pad, EOS = 1; decoder input = targets shifted right from 0).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidistill.config_args import ConfigError
from vidistill.models import decoding, losses, t5 as t5_lib, vit
from vidistill.models.layers import partitioned

Array = jax.Array
Batch = Mapping[str, Any]


def video_to_float(video: Array) -> Array:
  """`uint8` pixels -> float32 in [-1, 1] (SigLIP's range); float input is taken as already so."""
  if jnp.issubdtype(video.dtype, jnp.integer):
    return vit.normalize_uint8(video)
  return jnp.asarray(video, jnp.float32)


def visual_projection(width: int, config: Any) -> nn.Dense:
  """Vision tokens `[B, N, D_vit]` -> the language model's `[B, N, width]` (its config's dtypes).

  The input axis (vision width) is left unnamed: naming it "embed" as well would put the same
  logical axis twice on one kernel, which flax rejects.
  """
  return nn.Dense(
      width, dtype=config.dtype, param_dtype=config.param_dtype,
      kernel_init=partitioned(nn.initializers.lecun_normal(), (None, "embed")),
      bias_init=partitioned(nn.initializers.zeros, ("embed",)))


class VideoLanguageModule(nn.Module):
  """The flax module. `video_encoder` maps `(video, train=) -> (tokens [B, N, D_vit], aux)`."""
  video_encoder: nn.Module
  t5_config: t5_lib.T5Config

  def setup(self):
    cfg = self.t5_config
    self.visual_projection = visual_projection(cfg.emb_dim, cfg)
    self.t5 = t5_lib.T5(cfg)

  def encode(self, video: Array, prompt_tokens: Array, *, train: bool = False
             ) -> tuple[Array, Array, dict[str, Any]]:
    """-> `(encoded [B, N+Lp, D], mask [B, N+Lp] bool, vision aux)`."""
    tokens, vision_aux = self.video_encoder(video_to_float(video), train=train)
    prefix = self.visual_projection(tokens)
    encoded, mask = self.t5.encode(prompt_tokens, prefix=prefix, train=train)
    return encoded, mask, vision_aux

  def decode(self, encoded: Array, encoder_mask: Array, decoder_input_tokens: Array, *,
             train: bool = False) -> Array:
    """Teacher-forced logits `[B, Lt, V]`."""
    return self.t5.decode(encoded, encoder_mask, decoder_input_tokens, train=train)

  def __call__(self, video: Array, prompt_tokens: Array, decoder_input_tokens: Array, *,
               train: bool = False) -> tuple[Array, dict[str, Any]]:
    encoded, mask, vision_aux = self.encode(video, prompt_tokens, train=train)
    logits = self.decode(encoded, mask, decoder_input_tokens, train=train)
    return logits, {"encoded": encoded, "encoder_mask": mask, "vision": vision_aux}

  def init_cache(self, encoded: Array, encoder_mask: Array, max_len: int):
    return self.t5.init_cache(encoded, encoder_mask, max_len)

  def decode_step(self, tokens: Array, cache: Any, static: Any, step: Array):
    return self.t5.decode_step(tokens, cache, static, step)


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  """How `predict_batch` decodes (hashable: one compiled function per config and shape)."""
  method: str = "greedy"  # greedy | beam | sample
  max_decode_len: int = 32  # answer tokens, EOS included
  beam_size: int = 4  # beam
  length_penalty: float = 0.6  # beam: scores divided by ((5 + len) / 6) ** length_penalty
  temperature: float = 1.0  # sample (0 = greedy)
  top_k: int = 0  # sample: keep the k most likely tokens (0 = all)
  top_p: float = 1.0  # sample: nucleus mass (1 = all)
  num_samples: int = 1  # sample: samples per example

  def __post_init__(self):
    if self.method not in ("greedy", "beam", "sample"):
      raise ConfigError(f"DecodeConfig.method={self.method!r} is not one of greedy/beam/sample")
    if self.max_decode_len <= 0 or self.beam_size <= 0 or self.num_samples <= 0:
      raise ConfigError(f"DecodeConfig sizes must be positive: {self}")


class VideoLanguageModel:
  """t5x-style model API over `VideoLanguageModule`; all methods take unboxed `params`
  (the tree under "params") and are safe to call inside `jax.jit`.

  Any module with the same methods (`__call__`, `encode`, `decode`, `init_cache`, `decode_step`)
  plugs in: paligemma.PaliGemmaModule (decoder-only Gemma, prefix-LM) does. `start_id` is the
  first decoder input (T5: the pad id; PaliGemma: its prompt separator).
  """

  def __init__(self, module: nn.Module, *, z_loss: float = 0.0, start_id: int = t5_lib.START_ID):
    self.module = module
    self.z_loss = z_loss
    self.start_id = start_id
    self._predict = jax.jit(self._predict_impl, static_argnames=("decode",))
    self._score = jax.jit(self._score_impl)

  def init(self, rng: Array, batch: Batch) -> dict[str, Any]:
    """Boxed (logically partitioned) variables `{"params": ...}` for a batch's shapes."""
    targets = batch["target_tokens"]
    return self.module.init(rng, batch["video"], batch["prompt_tokens"],
                            t5_lib.shift_right(targets, self.start_id))

  def loss_fn(self, params: Any, batch: Batch, rng: Array | None, *, train: bool = True
              ) -> tuple[Array, dict[str, Array]]:
    """Teacher-forced token cross-entropy on the target tokens (padding excluded) + z-loss."""
    targets = batch["target_tokens"]
    rngs = {"dropout": rng} if (train and rng is not None) else {}
    logits, _ = self.module.apply({"params": params}, batch["video"], batch["prompt_tokens"],
                                  t5_lib.shift_right(targets, self.start_id), train=train,
                                  rngs=rngs)
    return losses.cross_entropy_loss(logits, targets, z_loss=self.z_loss)

  def _encode(self, params: Any, batch: Batch) -> tuple[Array, Array]:
    encoded, mask, _ = self.module.apply({"params": params}, batch["video"],
                                         batch["prompt_tokens"], method="encode")
    return encoded, mask

  def predict_batch(self, params: Any, batch: Batch, decode: DecodeConfig = DecodeConfig(), *,
                    rng: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """Decodes answers: `(tokens [B, max_decode_len] int32, aux)`, the best hypothesis per example.

    aux: "all_tokens" [B, K, max_decode_len] (K = beam_size, num_samples, or 1), "scores" [B, K]
    (beam: length-normalised log-likelihood, best first; sample/greedy: log-likelihood).
    Sampling needs `rng`.
    """
    return self._predict(params, {k: batch[k] for k in ("video", "prompt_tokens")}, rng,
                         decode=decode)

  def _predict_impl(self, params, batch, rng, *, decode: DecodeConfig):
    encoded, mask = self._encode(params, batch)
    batch_size = encoded.shape[0]
    cache, static = self.module.apply({"params": params}, encoded, mask, decode.max_decode_len,
                                      method="init_cache")

    def tokens_to_logits(state: decoding.DecodingState):
      return self.module.apply({"params": params}, state.cur_token, state.cache, state.static,
                               state.step, method="decode_step")

    common = dict(batch_size=batch_size, max_len=decode.max_decode_len, cache=cache,
                  static=static, start_id=self.start_id)
    if decode.method == "beam":
      tokens, scores = decoding.beam_search(tokens_to_logits, beam_size=decode.beam_size,
                                            alpha=decode.length_penalty, **common)
    else:
      greedy = decode.method == "greedy"
      tokens, scores = decoding.sample(
          tokens_to_logits, rng=rng, temperature=0.0 if greedy else decode.temperature,
          top_k=decode.top_k, top_p=decode.top_p,
          num_decodes=1 if greedy else decode.num_samples, **common)
      order = jnp.argsort(-scores, axis=1)  # best sample first
      tokens = jnp.take_along_axis(tokens, order[:, :, None], axis=1)
      scores = jnp.take_along_axis(scores, order, axis=1)
    return tokens[:, 0], {"all_tokens": tokens, "scores": scores}

  def score_batch(self, params: Any, batch: Batch) -> tuple[Array, dict[str, Array]]:
    """Log-likelihood of `batch["target_tokens"]`: `[B, L]` -> scores `[B]`, or candidate answers
    `[B, C, L]` -> `[B, C]` (multiple-choice QA; the encoder runs once per example).
    aux: "token_scores" (per-token log p, 0 at padding), same leading shape plus L."""
    return self._score(params, {k: batch[k] for k in ("video", "prompt_tokens", "target_tokens")})

  def _score_impl(self, params, batch):
    targets = batch["target_tokens"]
    candidates = targets[:, None] if targets.ndim == 2 else targets
    encoded, mask = self._encode(params, batch)

    def logits_fn(static, decoder_input_tokens):
      return self.module.apply({"params": params}, static[0], static[1], decoder_input_tokens,
                               method="decode")

    scores, token_scores = decoding.score_candidates(logits_fn, (encoded, mask), candidates,
                                                     start_id=self.start_id)
    if targets.ndim == 2:
      scores, token_scores = scores[:, 0], token_scores[:, 0]
    return scores, {"token_scores": token_scores}


def make_model(video_encoder: nn.Module, t5_variant: str | t5_lib.T5Config, *,
               z_loss: float = 0.0, **t5_overrides: Any) -> VideoLanguageModel:
  """`make_model(VideoEncoder(...), "base", dtype="bfloat16")`: the model API, ready to init."""
  cfg = (t5_variant if isinstance(t5_variant, t5_lib.T5Config)
         else t5_lib.decode_variant(t5_variant, **t5_overrides))
  if isinstance(t5_variant, t5_lib.T5Config) and t5_overrides:
    cfg = dataclasses.replace(cfg, **t5_overrides)
  return VideoLanguageModel(VideoLanguageModule(video_encoder, cfg), z_loss=z_loss)
