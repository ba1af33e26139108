"""Import PaliGemma / PaliGemma 2 weights: Hugging Face safetensors and big_vision `.npz` -> our
paligemma.PaliGemmaModule parameters.

Both layouts are first brought to big_vision's PaliGemma names ("img/...": the SigLIP ViT whose
`head` is the linear projector; "llm/...": Gemma, models/ppp/gemma.py), then to ours:
  img/head/{kernel,bias}      -> visual_projection/{kernel,bias}
  img/...                     -> video_encoder/image/...       (SigLIP, vit.py's names)
  llm/embedder/input_embedding -> llm/embedder/embedding
  llm/layers/...  [depth, ...] -> llm/layers_{i}/...            (or kept stacked for a model
                                                                 with scan_layers)
  llm/layers/attn/qkv_einsum/w [3, N, D, H] (checkpoints with N == K) -> q_einsum, kv_einsum
`video_encoder/temporal_embedding` is not in an image checkpoint: it is imported as zeros, so the
imported model is the image model applied per frame.

Hugging Face (`PaliGemmaForConditionalGeneration.save_pretrained`, transformers 4 and 5 names,
single or sharded files with `model.safetensors.index.json`): torch Linear weights are [out, in];
q/k/v/o projections are flat over heads; Gemma 1's `post_attention_layernorm` is the norm before
the MLP while Gemma 2's is the norm after attention (Gemma 2 has `pre_feedforward_layernorm`).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import numpy as np

import flax.linen as nn
import jax

from vidistill.convert import siglip
from vidistill.models import gemma as gemma_lib
from vidistill.models import layer_stack
from vidistill.models import paligemma as paligemma_lib
from vidistill.models import video_encoder as video_encoder_lib
from vidistill.models import vit as vit_lib
from vidistill.models import vlm

Flat = dict[str, np.ndarray]
CheckpointMismatchError = siglip.CheckpointMismatchError


# ---------------------------------------------------------------------------------------------
# big_vision layout -> ours


def _split_llm_layers(flat: Flat) -> Flat:
  """"layers/<name>" stacked [depth, ...] or "layers/<i>/<name>" -> "layers_<i>/<name>"."""
  out: Flat = {}
  for key, value in flat.items():
    m = re.fullmatch(r"layers/(\d+)/(.*)", key)
    if m:
      out[f"layers_{m.group(1)}/{m.group(2)}"] = value
    elif key.startswith("layers/"):
      for i in range(value.shape[0]):
        out[f"layers_{i}/{key[len('layers/'):]}"] = value[i]
    else:
      out[key] = value
  for key in [k for k in out if k.endswith("attn/qkv_einsum/w")]:
    qkv = out.pop(key)
    base = key[:-len("qkv_einsum/w")]
    out[base + "q_einsum/w"], out[base + "kv_einsum/w"] = qkv[0], qkv[1:]
  for key in [k for k in out if re.search(r"mlp/(gating_einsum|linear)/w$", k)]:
    out[key[:-2]] = out.pop(key)  # orbax-converted Gemma checkpoints keep an extra "w"
  return out


def big_vision_to_ours(flat: Flat, template: Mapping[str, Any], *, source: str,
                       **kwargs: Any) -> dict[str, Any]:
  """Flat big_vision PaliGemma keys ("img/...", "llm/...") -> params matching `template`."""
  out: Flat = {}
  for key, value in flat.items():
    root, _, rest = key.partition("/")
    if root == "img":
      if rest in ("head/kernel", "head/bias"):
        out["visual_projection/" + rest.split("/")[1]] = value
      else:
        out["video_encoder/image/" + rest] = value
    elif root == "llm":
      out["llm/" + rest] = value
    else:
      out[key] = value
  llm = _split_llm_layers({k[4:]: v for k, v in out.items() if k.startswith("llm/")})
  out = {k: v for k, v in out.items() if not k.startswith("llm/")}
  out.update({"llm/" + k: v for k, v in llm.items()})
  if "llm/embedder/input_embedding" in out:
    out["llm/embedder/embedding"] = out.pop("llm/embedder/input_embedding")
  want = siglip.flatten(template)
  if any(k.startswith("llm/layers/") for k in want):  # a scanned Gemma
    out = siglip.flatten(layer_stack.stack_layers(siglip.unflatten(out), "layers"))
  temporal = "video_encoder/temporal_embedding"
  if temporal in want and temporal not in out:
    out[temporal] = np.zeros(want[temporal].shape, np.float32)
  return siglip.match_to_template(out, template, source=source, **kwargs)


def from_big_vision_npz(path: str, template: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
  """big_vision PaliGemma `.npz` ("params/img/...", "params/llm/...") -> params like `template`
  (a PaliGemmaModule's params or their `jax.eval_shape`)."""
  flat = siglip.big_vision_subtree(siglip.load_npz(path))  # drops "params/", splits ViT stacks
  return big_vision_to_ours(flat, template, source=path, **kwargs)


# ---------------------------------------------------------------------------------------------
# Hugging Face -> big_vision layout


def _strip_hf_prefix(key: str) -> tuple[str, str] | None:
  """-> (part, rest) with part in {vision, projector, llm, lm_head}; transformers 4 and 5 names."""
  for pattern, part in ((r"(?:model\.)?vision_tower\.(?:vision_model\.)?(.*)", "vision"),
                        (r"(?:model\.)?multi_modal_projector\.linear\.(.*)", "projector"),
                        (r"model\.language_model\.(.*)", "llm"),
                        (r"language_model\.model\.(.*)", "llm"),
                        (r"model\.((?:layers|embed_tokens|norm)\..*)", "llm"),  # GemmaForCausalLM
                        (r"(?:language_model\.)?lm_head\.(.*)", "lm_head")):
    m = re.fullmatch(pattern, key)
    if m:
      return part, m.group(1)
  return None


def _hf_llm(rest: str, w: np.ndarray, cfg: gemma_lib.GemmaConfig, gemma2: bool
            ) -> tuple[str, np.ndarray] | None:
  if rest == "embed_tokens.weight":
    return "llm/embedder/input_embedding", w
  if rest == "norm.weight":
    return "llm/final_norm/scale", w
  m = re.fullmatch(r"layers\.(\d+)\.(.*)\.weight", rest)
  if not m:
    return None
  base, tail = f"llm/layers/{m.group(1)}/", m.group(2)
  n, k, h, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.width
  norms = {"input_layernorm": "pre_attention_norm",
           "post_attention_layernorm": "post_attention_norm" if gemma2 else "pre_ffw_norm",
           "pre_feedforward_layernorm": "pre_ffw_norm",
           "post_feedforward_layernorm": "post_ffw_norm"}
  if tail in norms:
    return base + norms[tail] + "/scale", w
  if tail == "self_attn.q_proj":  # [N*H, D] -> [N, D, H]
    return base + "attn/q_einsum/w", w.reshape(n, h, d).transpose(0, 2, 1)
  if tail in ("self_attn.k_proj", "self_attn.v_proj"):  # [K*H, D] -> [K, D, H]
    return base + f"attn/{tail[-6]}_proj_kv", w.reshape(k, h, d).transpose(0, 2, 1)
  if tail == "self_attn.o_proj":  # [D, N*H] -> [N, H, D]
    return base + "attn/attn_vec_einsum/w", w.T.reshape(n, h, d)
  if tail in ("mlp.gate_proj", "mlp.up_proj"):
    return base + f"mlp/{tail[4:]}", w.T
  if tail == "mlp.down_proj":
    return base + "mlp/linear", w.T
  return None


def hf_to_big_vision(flat: Flat, cfg: gemma_lib.GemmaConfig, vision_heads: int, *, gemma2: bool,
                     source: str) -> Flat:
  """HF PaliGemma keys -> big_vision PaliGemma keys (unstacked layers "llm/layers/<i>/...")."""
  out: Flat = {}
  vision: Flat = {}
  unknown = []
  for key, value in flat.items():
    value = np.asarray(value)
    hit = _strip_hf_prefix(key)
    if hit is None:
      unknown.append(key)
      continue
    part, rest = hit
    if part == "vision":
      if not rest.startswith("head."):  # SigLIP's MAP head: PaliGemma reads the tokens before it
        vision["vision_model." + rest] = value
    elif part == "projector":
      out["img/head/" + ("kernel" if rest == "weight" else "bias")] = (
          value.T if rest == "weight" else value)
    elif part == "lm_head":
      continue  # tied to the embedding in every PaliGemma
    else:
      converted = _hf_llm(rest, value, cfg, gemma2)
      if converted is None:
        unknown.append(key)
      else:
        out[converted[0]] = converted[1]
  img, unknown_vision = siglip.hf_to_big_vision(vision, vision_heads=vision_heads)
  out.update(img)
  unknown += unknown_vision
  for key in [k for k in out if k.endswith("/k_proj_kv")]:
    base = key[:-len("k_proj_kv")]
    out[base + "kv_einsum/w"] = np.stack([out.pop(key), out.pop(base + "v_proj_kv")])
  for key in [k for k in out if k.endswith("/mlp/gate_proj")]:
    base = key[:-len("gate_proj")]
    out[base + "gating_einsum"] = np.stack([out.pop(key), out.pop(base + "up_proj")])
  if unknown:
    raise CheckpointMismatchError(source, unexpected=[(k, tuple(np.shape(flat[k])))
                                                      for k in unknown])
  return out


def _read_config(path: str) -> dict[str, Any]:
  file = os.path.join(path, "config.json") if os.path.isdir(path) else path
  if not os.path.exists(file):
    raise FileNotFoundError(f"no config.json at {path}: give the save_pretrained directory")
  with open(file) as f:
    return json.load(f)


def gemma_config_from_hf(text: Mapping[str, Any], **overrides: Any) -> gemma_lib.GemmaConfig:
  """A Hugging Face Gemma / Gemma 2 `text_config` dict -> GemmaConfig."""
  gemma2 = text.get("model_type") == "gemma2"
  heads = int(text.get("num_attention_heads", 8))
  width = int(text.get("hidden_size", 2048))
  rope = (text.get("rope_parameters") or {}).get("rope_theta", text.get("rope_theta", 10_000.0))
  fields = dict(vocab_size=int(text.get("vocab_size", gemma_lib.PALIGEMMA_VOCAB_SIZE)),
                width=width, depth=int(text.get("num_hidden_layers", 18)),
                mlp_dim=int(text.get("intermediate_size", 16_384)), num_heads=heads,
                num_kv_heads=int(text.get("num_key_value_heads", heads)),
                head_dim=int(text.get("head_dim") or width // heads),
                norm_eps=float(text.get("rms_norm_eps", 1e-6)), rope_base=float(rope))
  if gemma2:
    types = text.get("layer_types")
    expected = ["sliding_attention" if i % 2 == 0 else "full_attention"
                for i in range(fields["depth"])]
    if types is not None and list(types) != expected:
      raise CheckpointMismatchError(f"(Gemma 2 layer_types {types}: only the alternating "
                                    "local/global pattern starting local is supported)")
    fields.update(query_pre_attn_scalar=float(text.get("query_pre_attn_scalar", 256)),
                  attn_logits_softcap=text.get("attn_logit_softcapping", 50.0),
                  final_logits_softcap=text.get("final_logit_softcapping", 30.0),
                  post_norms=True, sliding_window=text.get("sliding_window", 4096))
  fields.update(overrides)
  return gemma_lib.GemmaConfig(**fields)


def hf_configs(path: str, **overrides: Any) -> tuple[gemma_lib.GemmaConfig, dict[str, Any]]:
  """(GemmaConfig, ViT keyword arguments) from a PaliGemma save_pretrained directory."""
  config = _read_config(path)
  if "text_config" not in config or "vision_config" not in config:
    raise CheckpointMismatchError(f"({path}: config.json is not a PaliGemma config: no "
                                  "text_config / vision_config)")
  vision = config["vision_config"]
  vit = dict(width=int(vision.get("hidden_size", 1152)),
             depth=int(vision.get("num_hidden_layers", 27)),
             mlp_dim=int(vision.get("intermediate_size", 4304)),
             num_heads=int(vision.get("num_attention_heads", 16)),
             patch_size=(int(vision.get("patch_size", 14)),) * 2, pool_type="none")
  return gemma_config_from_hf(config["text_config"], **overrides), vit


def from_hf_safetensors(path: str, template: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
  """HF `PaliGemmaForConditionalGeneration` directory (or one .safetensors file next to its
  config.json) -> params like `template`."""
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  config = _read_config(directory)
  cfg, vit = hf_configs(directory)
  flat = siglip.load_safetensors(path)
  bv = hf_to_big_vision(flat, cfg, vit["num_heads"],
                        gemma2=config["text_config"].get("model_type") == "gemma2", source=path)
  return big_vision_to_ours(bv, template, source=path, **kwargs)


def gemma_from_hf(path: str, template: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
  """HF `GemmaForCausalLM` / `Gemma2ForCausalLM` directory -> params like `template` (a Gemma's:
  the `llm` part of a PaliGemma model)."""
  config = _read_config(path if os.path.isdir(path) else os.path.dirname(path))
  cfg = gemma_config_from_hf(config)
  bv = hf_to_big_vision(siglip.load_safetensors(path), cfg, 1,
                        gemma2=config.get("model_type") == "gemma2", source=path)
  return big_vision_to_ours(bv, {"llm": template}, source=path, **kwargs)["llm"]


def template_batch(image_size: int, *, frames: int = 1, prompt_length: int = 8,
                   answer_length: int = 8) -> dict[str, np.ndarray]:
  """A zero batch with the shapes `model.init` needs."""
  return {"video": np.zeros((1, frames, image_size, image_size, 3), np.uint8),
          "prompt_tokens": np.zeros((1, prompt_length), np.int32),
          "target_tokens": np.zeros((1, answer_length), np.int32)}


def image_size(path: str) -> int:
  """The side in pixels the checkpoint's SigLIP was trained at (224, 448 or 896)."""
  return int(_read_config(path)["vision_config"].get("image_size", 224))


def load_hf(path: str, *, max_frames: int = 16, dtype: str = "float32", **model_kwargs: Any
            ) -> tuple[vlm.VideoLanguageModel, dict[str, Any]]:
  """`(model, params)` from a PaliGemma save_pretrained directory: the video VLM whose image
  tower, projector and Gemma are the checkpoint's, temporal embedding zero. `model_kwargs` go to
  paligemma.make_model (bos_id, start_id, z_loss, GemmaConfig overrides such as scan_layers)."""
  cfg, vit = hf_configs(path, dtype=dtype)
  encoder = video_encoder_lib.VideoEncoder(image=vit_lib.ViT(**vit, dtype=cfg.dtype),
                                           max_frames=max_frames, dtype=cfg.dtype)
  model = paligemma_lib.make_model(encoder, cfg, **model_kwargs)
  batch = template_batch(image_size(path))
  template = jax.eval_shape(lambda: model.init(jax.random.key(0), batch))
  template = nn.meta.unbox(template["params"])
  return model, from_hf_safetensors(path, template)
