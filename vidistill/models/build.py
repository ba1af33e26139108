"""Models from the `model` section of a stage config: one explicit table, no registry.

    model.kind = "vlm"            PaLI-style video VLM (vlm.VideoLanguageModel)
    model.kind = "paligemma"      PaliGemma-style video VLM: decoder-only Gemma with a prefix-LM
                                  mask behind the same API (paligemma.make_model)
    model.kind = "dual_encoder"   video-text dual encoder (dual_encoder_model.DualEncoderModel)

The vocabulary size always comes from the vocabulary the data is tokenised with, so a config
cannot disagree with its data about it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax.numpy as jnp

from vidistill.config_args import ConfigError
from vidistill.models import dual_encoder_model
from vidistill.models import paligemma
from vidistill.models import video_encoder as video_encoder_lib
from vidistill.models import vit
from vidistill.models import vlm

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _dtype(name: str) -> Any:
  if name not in DTYPES:
    raise ConfigError(f"dtype={name!r} is not one of {sorted(DTYPES)}")
  return DTYPES[name]


def _video_encoder(model: Mapping[str, Any], compute: Any) -> video_encoder_lib.VideoEncoder:
  """`model.vit` per frame + `model.video` (temporal embedding, token pooling)."""
  image = vit.ViT(**dict(model["vit"]), dtype=compute)
  return video_encoder_lib.VideoEncoder(image=image, **dict(model.get("video", {})),
                                        dtype=compute)


def build_vlm(model: Mapping[str, Any], *, vocab_size: int, dtype: str = "float32", **_: Any
              ) -> vlm.VideoLanguageModel:
  compute = _dtype(dtype)
  encoder = _video_encoder(model, compute)
  t5 = dict(model["t5"])
  variant = t5.pop("variant")
  return vlm.make_model(encoder, variant, z_loss=float(model.get("z_loss", 0.0)),
                        vocab_size=vocab_size, dtype=compute, **t5)


def build_paligemma(model: Mapping[str, Any], *, vocab_size: int, dtype: str = "float32",
                    **_: Any) -> vlm.VideoLanguageModel:
  """`model.gemma = {variant, **GemmaConfig overrides}`; `model.prompt = {bos_id, start_id}`
  (PaliGemma's vocabulary: BOS 2 and "\\n" 108; a vocabulary without BOS: bos_id None and the
  EOS as separator)."""
  compute = _dtype(dtype)
  encoder = _video_encoder(model, compute)
  gemma = dict(model["gemma"])
  variant = gemma.pop("variant")
  prompt = dict(model.get("prompt", {}))
  return paligemma.make_model(encoder, variant, z_loss=float(model.get("z_loss", 0.0)),
                              bos_id=prompt.get("bos_id", paligemma.gemma_lib.BOS_ID),
                              start_id=int(prompt.get("start_id", paligemma.NEWLINE_ID)),
                              vocab_size=vocab_size, dtype=compute, **gemma)


def build_dual_encoder(model: Mapping[str, Any], *, vocab_size: int, dtype: str = "float32",
                       mesh: Any = None, vocab: Any = None, text_length: int = 32
                       ) -> dual_encoder_model.DualEncoderModel:
  module = dual_encoder_model.build_module(model, vocab_size=vocab_size, dtype=_dtype(dtype))
  return dual_encoder_model.DualEncoderModel(module, loss=model.get("loss", "sigmoid"), mesh=mesh,
                                             text_length=text_length, vocab=vocab)


BUILDERS: dict[str, Callable[..., Any]] = {"vlm": build_vlm, "paligemma": build_paligemma,
                                           "dual_encoder": build_dual_encoder}

# Where `config.init.import_<role>` puts imported weights (vidistill/convert/imports.py): the
# parameter subtree of each part of a model. The dual encoder's "lm" is its text tower.
IMPORT_TARGETS: dict[str, dict[str, str]] = {
    "vlm": {"vit": "video_encoder/image", "lm": "t5"},
    # "vlm": a whole PaliGemma checkpoint (image tower, projector and Gemma) at once.
    "paligemma": {"vit": "video_encoder/image", "lm": "llm", "vlm": ""},
    "dual_encoder": {"vit": "img", "lm": "txt"},
}


# The API each kind offers: "vlm" (vlm.VideoLanguageModel: video + prompt -> answer; the T5 and
# the PaliGemma VLM alike) or "dual_encoder". Data, training, captioning and evaluation key on it.
FAMILIES: dict[str, str] = {"vlm": "vlm", "paligemma": "vlm", "dual_encoder": "dual_encoder"}


def family(kind: str) -> str:
  """`config.model.kind` -> "vlm" | "dual_encoder" (a ConfigError for an unknown kind)."""
  if kind not in FAMILIES:
    raise ConfigError(f"config.model.kind={kind!r} is not one of {sorted(FAMILIES)}")
  return FAMILIES[kind]


def build(model: Mapping[str, Any], **kwargs: Any) -> Any:
  kind = model.get("kind")
  if kind not in BUILDERS:
    raise ConfigError(f"config.model.kind={kind!r} is not one of {sorted(BUILDERS)}")
  return BUILDERS[kind](model, **kwargs)
