"""Import SigLIP weights: big_vision `.npz` and Hugging Face safetensors -> our ViT / dual encoder.

Our ViT, text tower and dual encoder use big_vision's parameter names (models/vit.py), so a
big_vision checkpoint maps by name; Hugging Face checkpoints are first renamed into that layout.

big_vision `.npz` (utils.save / `np.savez` of the flattened tree): keys are '/'-joined paths,
usually under "params/" ("params/img/Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel",
"params/txt/Embed_0/embedding", "params/t", "params/b"); bfloat16 arrays are stored as 2-byte
void and viewed back. Checkpoints from `scan=True` models hold one stacked
"Transformer/encoderblock/..." entry per parameter ([depth, ...]); it is split into
`encoderblock_{i}`, and stacked again when the template is a scanned model (`scan=True`).

Hugging Face (`SiglipVisionModel` / `SiglipModel.save_pretrained`): torch Linear weights are
[out, in] (transposed here), q/k/v/out projections are flat [D, D] (reshaped to heads), the MAP
head's `nn.MultiheadAttention` packs q, k, v into one `in_proj_weight` (split here), the conv
kernel is [D, 3, p, p] (-> [p, p, 3, D]). SiglipVisionModel files from transformers >= 5 have no
"vision_model." prefix; older ones and full SiglipModel files do.

Every import is checked against a template (the model's params or `jax.eval_shape` of its init):
missing keys, unexpected keys and shape mismatches raise `CheckpointMismatchError` listing each.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Mapping

import ml_dtypes
import numpy as np
from flax import traverse_util
from flax.core import meta
from safetensors.numpy import load_file

from vidistill.models import layer_stack
from vidistill.models import vit as vit_lib

Flat = dict[str, np.ndarray]


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the model: lists missing/unexpected keys and shape mismatches."""

  def __init__(self, source: str, missing=(), unexpected=(), shapes=()):
    lines = [f"checkpoint {source} does not match the model:"]
    lines += [f"  missing in checkpoint: {k} (model shape {s})" for k, s in missing]
    lines += [f"  unexpected in checkpoint: {k} (checkpoint shape {s})" for k, s in unexpected]
    lines += [f"  wrong shape: {k}: checkpoint {c} vs model {m}" for k, c, m in shapes]
    lines.append("(use allow_missing= / ignore_unexpected= regexes for parts you mean to skip, "
                 "e.g. a new head or the temporal module)")
    super().__init__("\n".join(lines))
    self.missing, self.unexpected, self.shapes = list(missing), list(unexpected), list(shapes)


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
  """'/'-joined paths -> leaves; flax's boxed leaves (LogicallyPartitioned, as `model.init` returns
  them) are unwrapped to the array or ShapeDtypeStruct they hold."""
  flat = traverse_util.flatten_dict(dict(tree), sep="/")
  return {k: v.value if isinstance(v, meta.AxisMetadata) else v for k, v in flat.items()}


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  return traverse_util.unflatten_dict(dict(flat), sep="/")


def _recover_dtype(a: np.ndarray) -> np.ndarray:
  # np.save writes bfloat16 as 2-byte void; big_vision's utils.recover_dtype views it back.
  if a.dtype.kind == "V" and a.itemsize == 2:
    return a.view(ml_dtypes.bfloat16)
  return a


def load_npz(path: str) -> Flat:
  """Flat {key: array} from a big_vision `.npz` (no pickle)."""
  with np.load(path, allow_pickle=False) as data:
    return {k: _recover_dtype(data[k]) for k in data.files}


def _unstack_scanned(flat: Flat) -> Flat:
  out = {}
  for key, value in flat.items():
    m = re.match(r"^(.*/)?encoderblock/(.*)$", key)
    if not m:
      out[key] = value
      continue
    for i in range(value.shape[0]):
      out[f"{m.group(1) or ''}encoderblock_{i}/{m.group(2)}"] = value[i]
  return out


def big_vision_subtree(flat: Flat, root: str = "") -> Flat:
  """Keys under `root` ("img", "txt", "" = everything), with any leading "params/" dropped."""
  if flat and all(k.startswith("params/") for k in flat):
    flat = {k[len("params/"):]: v for k, v in flat.items()}
  flat = _unstack_scanned(flat)
  if not root:
    return flat
  prefix = root.rstrip("/") + "/"
  sub = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
  if not sub:
    roots = sorted({k.split("/")[0] for k in flat})
    raise CheckpointMismatchError(f"(no keys under {root!r}; top-level names: {roots})")
  return sub


def match_to_template(flat: Flat, template: Mapping[str, Any], *, source: str,
                      allow_missing: Iterable[str] = (), ignore_unexpected: Iterable[str] = (),
                      resample_posemb: bool = True) -> dict[str, Any]:
  """Checks `flat` against the template's keys and shapes; returns nested params (template dtype).

  Keys matching an `allow_missing` regex keep the template's value (which must then be concrete,
  e.g. freshly initialised params). Keys matching `ignore_unexpected` are dropped. With
  `resample_posemb`, a ViT "pos_embedding" whose square grid differs is bilinearly resized.
  """
  want = flatten(template)
  if any(re.search(r"(^|/)encoderblock/", k) for k in want):  # a scanned model
    flat = flatten(layer_stack.stack_layers(unflatten(flat), "encoderblock"))
  allow_missing = [re.compile(p) for p in allow_missing]
  ignore = [re.compile(p) for p in ignore_unexpected]
  missing, unexpected, shapes, out = [], [], [], {}
  for key, value in flat.items():
    if key not in want:
      if not any(p.fullmatch(key) for p in ignore):
        unexpected.append((key, tuple(value.shape)))
      continue
    target = want[key]
    value = np.asarray(value)
    if (resample_posemb and key.endswith("pos_embedding") and value.ndim == 3 and
        value.shape != tuple(target.shape) and value.shape[2] == target.shape[2]):
      side = int(round(np.sqrt(target.shape[1])))
      if side * side == target.shape[1]:
        value = np.asarray(vit_lib.resample_posemb(value.astype(np.float32), (side, side)))
    if value.shape != tuple(target.shape):
      shapes.append((key, tuple(value.shape), tuple(target.shape)))
      continue
    out[key] = value.astype(target.dtype)
  for key, target in want.items():
    if key in out or any(k == key for k, *_ in shapes):
      continue
    if any(p.fullmatch(key) for p in allow_missing):
      if not hasattr(target, "__array__"):
        raise ValueError(f"{key} is allowed to be missing but the template has no value for it "
                         "(pass initialised params, not eval_shape output)")
      out[key] = np.asarray(target)
    else:
      missing.append((key, tuple(target.shape)))
  if missing or unexpected or shapes:
    raise CheckpointMismatchError(source, missing, unexpected, shapes)
  return unflatten(out)


def from_big_vision_npz(path: str, template: Mapping[str, Any], *, root: str = "img",
                        **kwargs: Any) -> dict[str, Any]:
  """big_vision SigLIP `.npz` -> params shaped like `template`.

  `root="img"` for a `vit.ViT` (the image tower; also `VideoEncoder`'s params["image"]),
  `root="txt"` for a `TextTransformer` (built with mask_padding=False, pool_type="last", as
  big_vision's), `root=""` for a whole `DualEncoder` (img, txt, t, b; pass
  `allow_missing=("temporal/.*",)` for its temporal transformer). Other keyword arguments go to
  `match_to_template`.
  """
  flat = big_vision_subtree(load_npz(path), root)
  return match_to_template(flat, template, source=f"{path}:{root or '/'}", **kwargs)


# ---------------------------------------------------------------------------------------------
# Hugging Face -> big_vision layout


def load_safetensors(path: str) -> Flat:
  """Flat {key: array} from a `.safetensors` file or a save_pretrained directory (sharded too)."""
  if os.path.isdir(path):
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
      with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    else:
      files = [f for f in sorted(os.listdir(path)) if f.endswith(".safetensors")]
    if not files:
      raise FileNotFoundError(f"no .safetensors files in {path}")
    flat: Flat = {}
    for name in files:
      flat.update(load_file(os.path.join(path, name)))
    return flat
  return load_file(path)


_HF_BLOCK = {
    "layer_norm1.weight": "LayerNorm_0/scale", "layer_norm1.bias": "LayerNorm_0/bias",
    "layer_norm2.weight": "LayerNorm_1/scale", "layer_norm2.bias": "LayerNorm_1/bias",
    "mlp.fc1.weight": "MlpBlock_0/Dense_0/kernel", "mlp.fc1.bias": "MlpBlock_0/Dense_0/bias",
    "mlp.fc2.weight": "MlpBlock_0/Dense_1/kernel", "mlp.fc2.bias": "MlpBlock_0/Dense_1/bias",
}
_HF_ATTN = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "out_proj": "out"}


def _attn(name: str, kind: str, w: np.ndarray, num_heads: int) -> np.ndarray:
  """torch Linear weight [out, in] or bias [out] -> big_vision [D, H, Dh] / [H, Dh, D] / [H, Dh]."""
  if kind == "bias":
    return w if name == "out" else w.reshape(num_heads, -1)
  d_out, d_in = w.shape
  if name == "out":
    return w.T.reshape(num_heads, d_in // num_heads, d_out)
  return w.T.reshape(d_in, num_heads, d_out // num_heads)


def _hf_encoder_key(rest: str, value: np.ndarray, num_heads: int, block_root: str):
  m = re.fullmatch(r"layers\.(\d+)\.(.*)", rest)
  if not m:
    return None
  i, tail = m.groups()
  base = f"{block_root}/encoderblock_{i}"
  if tail in _HF_BLOCK:
    v = value.T if tail.endswith("weight") and "fc" in tail else value
    return f"{base}/{_HF_BLOCK[tail]}", v
  m = re.fullmatch(r"self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)", tail)
  if m:
    name = _HF_ATTN[m.group(1)]
    kind = "kernel" if m.group(2) == "weight" else "bias"
    return (f"{base}/MultiHeadDotProductAttention_0/{name}/{kind}",
            _attn(name, m.group(2), value, num_heads))
  return None


def _hf_vision(key: str, value: np.ndarray, num_heads: int) -> list[tuple[str, np.ndarray]]:
  simple = {
      "embeddings.patch_embedding.bias": ("embedding/bias", lambda v: v),
      "embeddings.patch_embedding.weight": ("embedding/kernel", lambda v: v.transpose(2, 3, 1, 0)),
      "embeddings.position_embedding.weight": ("pos_embedding", lambda v: v[None]),
      "post_layernorm.weight": ("Transformer/encoder_norm/scale", lambda v: v),
      "post_layernorm.bias": ("Transformer/encoder_norm/bias", lambda v: v),
      "head.probe": ("MAPHead_0/probe", lambda v: v),
      "head.layernorm.weight": ("MAPHead_0/LayerNorm_0/scale", lambda v: v),
      "head.layernorm.bias": ("MAPHead_0/LayerNorm_0/bias", lambda v: v),
      "head.mlp.fc1.weight": ("MAPHead_0/MlpBlock_0/Dense_0/kernel", lambda v: v.T),
      "head.mlp.fc1.bias": ("MAPHead_0/MlpBlock_0/Dense_0/bias", lambda v: v),
      "head.mlp.fc2.weight": ("MAPHead_0/MlpBlock_0/Dense_1/kernel", lambda v: v.T),
      "head.mlp.fc2.bias": ("MAPHead_0/MlpBlock_0/Dense_1/bias", lambda v: v),
  }
  if key in simple:
    name, fn = simple[key]
    return [(name, fn(value))]
  attn = "MAPHead_0/MultiHeadDotProductAttention_0"
  if key in ("head.attention.in_proj_weight", "head.attention.in_proj_bias"):
    kind = "weight" if key.endswith("weight") else "bias"
    return [(f"{attn}/{n}/{'kernel' if kind == 'weight' else 'bias'}", _attn(n, kind, part, num_heads))
            for n, part in zip(("query", "key", "value"), np.split(value, 3, axis=0))]
  if key.startswith("head.attention.out_proj."):
    kind = key.rsplit(".", 1)[1]
    return [(f"{attn}/out/{'kernel' if kind == 'weight' else 'bias'}",
             _attn("out", kind, value, num_heads))]
  if key.startswith("encoder."):
    hit = _hf_encoder_key(key[len("encoder."):], value, num_heads, "Transformer")
    if hit:
      return [hit]
  return []


def _hf_text(key: str, value: np.ndarray, num_heads: int) -> list[tuple[str, np.ndarray]]:
  simple = {
      "embeddings.token_embedding.weight": ("Embed_0/embedding", lambda v: v),
      "embeddings.position_embedding.weight": ("pos_embedding", lambda v: v[None]),
      "final_layer_norm.weight": ("Encoder_0/encoder_norm/scale", lambda v: v),
      "final_layer_norm.bias": ("Encoder_0/encoder_norm/bias", lambda v: v),
      "head.weight": ("head/kernel", lambda v: v.T),
      "head.bias": ("head/bias", lambda v: v),
  }
  if key in simple:
    name, fn = simple[key]
    return [(name, fn(value))]
  if key.startswith("encoder."):
    hit = _hf_encoder_key(key[len("encoder."):], value, num_heads, "Encoder_0")
    if hit:
      return [hit]
  return []


def hf_to_big_vision(flat: Flat, *, vision_heads: int | None = None,
                     text_heads: int | None = None, bare: str = "img") -> tuple[Flat, list[str]]:
  """Renames HF SigLIP keys into big_vision's two-tower layout ("img/...", "txt/...", "t", "b").

  Returns (converted, unknown_hf_keys). The head counts are needed to split the flat attention
  projections (take them from the template or the HF config). Keys without a "vision_model." /
  "text_model." prefix (single-tower files from transformers >= 5) belong to tower `bare`.
  """
  out: Flat = {}
  unknown = []
  for key, value in flat.items():
    value = np.asarray(value)
    if key in ("logit_scale", "logit_bias"):
      out["t" if key == "logit_scale" else "b"] = value.reshape(1)
      continue
    tower, _, rest = key.partition(".")
    if tower not in ("vision_model", "text_model"):
      tower, rest = {"img": "vision_model", "txt": "text_model"}[bare], key
    if tower == "text_model":
      hits = _hf_text(rest, value, text_heads) if text_heads else []
      prefix = "txt/"
    else:
      hits = _hf_vision(rest, value, vision_heads) if vision_heads else []
      prefix = "img/"
    if not hits:
      unknown.append(key)
    for name, v in hits:
      out[prefix + name] = v
  return out, unknown


def _heads(template: Mapping[str, Any], root: str) -> int | None:
  for key, value in flatten(template).items():
    if re.search(rf"(^|/){root}encoderblock_0/MultiHeadDotProductAttention_0/query/kernel$", key):
      return int(value.shape[1])
    if re.search(rf"(^|/){root}encoderblock/MultiHeadDotProductAttention_0/query/kernel$", key):
      return int(value.shape[2])  # scanned: [depth, D, heads, head_dim]
  return None


def from_hf_safetensors(path: str, template: Mapping[str, Any], *, root: str = "img",
                        **kwargs: Any) -> dict[str, Any]:
  """HF SigLIP safetensors -> params shaped like `template` (same `root` meaning as for npz).

  `root="img"`: template is a `vit.ViT(pool_type="map", head_dim=None)` matching the HF config
  (HF's vision tower has no projection). `root="txt"`: a `TextTransformer(mask_padding=False,
  pool_type="last", head_dim=projection size)`. HF keys of the other tower are ignored.
  """
  flat = load_safetensors(path)
  if root == "img":
    heads = dict(vision_heads=_heads(template, "Transformer/"))
  elif root == "txt":
    heads = dict(text_heads=_heads(template, "Encoder_0/"))
  else:
    heads = dict(vision_heads=_heads(template, "img/Transformer/"),
                 text_heads=_heads(template, "txt/Encoder_0/"))
  converted, unknown = hf_to_big_vision(flat, bare=root or "img", **heads)
  if root == "img":  # the other tower's keys are not ours to check
    unknown = [k for k in unknown if not k.startswith("text_model.")]
  elif root == "txt":
    unknown = [k for k in unknown if not k.startswith("vision_model.")]
  if unknown:
    raise CheckpointMismatchError(
        path, unexpected=[(k, tuple(np.shape(flat[k]))) for k in unknown])
  sub = big_vision_subtree(converted, root) if root else converted
  return match_to_template(sub, template, source=f"{path}:{root or '/'}", **kwargs)
