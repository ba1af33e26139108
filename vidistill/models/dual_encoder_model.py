"""The dual encoder as the trainer and the evaluators drive it (t5x's model-API role).

`DualEncoderModel` wraps the flax `DualEncoder` with `init` / `loss_fn` (model_api.TrainableModel)
and `embed_videos` / `embed_texts` (the evaluators' VideoTextEmbedder). A batch is the contrastive
seqio task's: "video" [B, T, H, W, 3] uint8 and "text_tokens" [B, L] int32 caption tokens (the
contrastive seqio task's "targets", renamed by the stage input).

With a mesh, the loss runs under shard_map with the text embeddings passed round the ring
(contrastive.*_loss_chunked), so no device ever holds the global B x B logits; without one it is
the naive loss on the (single-device) batch. Both give the same value and gradients.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidistill.models import contrastive
from vidistill.models import dual_encoder as de
from vidistill.models import vit

LOSSES = ("sigmoid", "softmax")


def build_module(config: Mapping[str, Any], *, vocab_size: int, dtype: Any = jnp.float32
                 ) -> de.DualEncoder:
  """The flax module from a stage config's `model` section (configs/train/dual_encoder.py)."""
  head = int(config["embed_dim"])
  img = vit.ViT(**dict(config["vit"]), head_dim=head, dtype=dtype)
  txt = de.TextTransformer(**dict(config["text"]), vocab_size=vocab_size, head_dim=head,
                           dtype=dtype)
  bias = config.get("bias_init")
  if config.get("loss", "sigmoid") == "softmax":
    bias = None
  return de.DualEncoder(img=img, txt=txt, temporal_type=config.get("temporal_type", "mean"),
                        temperature_init=float(config.get("temperature_init",
                                                          de.SIGLIP_TEMPERATURE_INIT)),
                        bias_init=bias)


@dataclasses.dataclass
class DualEncoderModel:
  module: de.DualEncoder
  loss: str = "sigmoid"
  mesh: jax.sharding.Mesh | None = None
  text_length: int = 32
  vocab: Any = None  # A seqio vocabulary; needed by embed_texts only.

  def __post_init__(self):
    if self.loss not in LOSSES:
      raise ValueError(f"DualEncoderModel.loss={self.loss!r} is not one of {LOSSES}")
    self._params = None

  # --------------------------------------------------------------------------------- training
  def init(self, rng: jax.Array, batch: Mapping[str, Any]) -> Any:
    return self.module.init(rng, vit.normalize_uint8(batch["video"]), batch["text_tokens"])

  def loss_fn(self, params: Any, batch: Mapping[str, Any], rng: jax.Array, *,
              train: bool = True) -> tuple[jax.Array, dict[str, jax.Array]]:
    (zv, zt), aux = self.module.apply(
        {"params": params}, vit.normalize_uint8(batch["video"]), batch["text_tokens"], train=train,
        rngs={"dropout": rng})
    scalars = (aux["temperature"],) if self.loss == "softmax" else (aux["temperature"], aux["bias"])
    loss = self._loss_function()(zv, zt, *scalars)
    metrics = {"temperature": aux["temperature"]}
    if aux["bias"] is not None:
      metrics["bias"] = aux["bias"]
    return loss, metrics

  def _loss_function(self):
    if self.mesh is None:
      return (contrastive.sigmoid_loss_naive if self.loss == "sigmoid"
              else contrastive.softmax_loss_naive)
    chunked = (contrastive.sigmoid_loss_chunked if self.loss == "sigmoid"
               else contrastive.softmax_loss_chunked)
    return contrastive.sharded(chunked, self.mesh)

  # ------------------------------------------------------------------------------- evaluation
  def with_params(self, params: Any) -> "DualEncoderModel":
    """A copy bound to `params`, for embed_videos / embed_texts."""
    bound = dataclasses.replace(self)
    bound._params = params
    return bound

  @functools.cached_property
  def _encode_video(self):
    return jax.jit(lambda p, v: self.module.apply({"params": p}, vit.normalize_uint8(v),
                                                  method=de.DualEncoder.encode_video)[0])

  @functools.cached_property
  def _encode_text(self):
    return jax.jit(lambda p, t: self.module.apply({"params": p}, t,
                                                  method=de.DualEncoder.encode_text)[0])

  def embed_videos(self, frames: np.ndarray) -> np.ndarray:
    """uint8 [B, T, H, W, 3] -> L2-normalised float32 [B, E]."""
    return np.asarray(self._encode_video(self._bound(), jnp.asarray(frames)))

  def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
    """Captions -> L2-normalised float32 [B, E], tokenised as the contrastive task does."""
    if self.vocab is None:
      raise ValueError("DualEncoderModel.embed_texts needs a vocabulary (DualEncoderModel.vocab)")
    tokens = tokenize(texts, self.vocab, self.text_length)
    return np.asarray(self._encode_text(self._bound(), jnp.asarray(tokens)))

  def _bound(self):
    if self._params is None:
      raise ValueError("bind parameters first: model.with_params(params)")
    return self._params


def tokenize(texts: Sequence[str], vocab: Any, length: int) -> np.ndarray:
  """int32 [B, length]: ids + EOS, trimmed (keeping EOS last) and right-padded with 0, as seqio."""
  out = np.zeros((len(texts), length), np.int32)
  eos = int(vocab.eos_id)
  for i, text in enumerate(texts):
    ids = list(vocab.encode(text))[:length - 1] + [eos]
    out[i, :len(ids)] = ids
  return out
