"""Weights in by config: parameter subtrees filled from checkpoints in their native formats.

    config.init.import_vit = "big_vision:/ckpt/siglip_so400m.npz"   # the model's vision encoder
    config.init.import_lm = "t5_hf:/ckpt/ul2_3b"                     # its language model
    config.init.imports = (("img", "big_vision:/ckpt/x.npz"),)       # any subtree (big_vision's
                                                                      # model_init mapping)

A spec is "FORMAT:PATH" or just "PATH" (the format is then read from the path: `.npz` ->
big_vision, a directory with `config.json` -> Hugging Face by its `model_type`, a `checkpoint`
file or `checkpoint_<step>` directories -> t5x). Each format is one converter of this package
applied to the template of its subtree, so names and shapes are checked against the model being
trained; a mismatch raises naming every key and both shapes.

`import_params(entries, template)` returns only the imported leaves (flat "a/b/c" -> numpy), so
the trainer places each straight onto its shard of the mesh and the rest keep their init.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vidistill.convert import paligemma
from vidistill.convert import siglip
from vidistill.convert import t5 as t5_convert


class ImportSpecError(ValueError):
  """An import spec cannot be resolved: unknown format, missing file or subtree."""


# A checkpoint's pooling head / projection is dropped when the model has none: the VLM reads the
# ViT's patch tokens (PaLI-3 takes SigLIP's ViT without its MAP head).
_VIT_HEADS = ("MAPHead_0/.*", "head/.*")


def _tower(template: Mapping[str, Any]) -> str:
  """Which tower of a two-tower big_vision file fits `template`: a ViT or the text encoder."""
  keys = siglip.flatten(template)
  return "txt" if any(k.startswith("Encoder_0/") for k in keys) else "img"


def _big_vision(path: str, template: Mapping[str, Any]) -> dict[str, Any]:
  flat = siglip.load_npz(path)
  roots = {k.split("/")[1] if k.startswith("params/") else k.split("/")[0] for k in flat}
  if "llm" in roots and "llm" in template:  # a whole PaliGemma into a whole PaliGemma model
    return paligemma.from_big_vision_npz(path, template)
  root = _tower(template) if {"img", "txt"} & roots else ""
  sub = siglip.big_vision_subtree(flat, root)
  return siglip.match_to_template(sub, template, source=f"{path}:{root or '/'}",
                                  ignore_unexpected=_VIT_HEADS)


def _siglip_hf(path: str, template: Mapping[str, Any]) -> dict[str, Any]:
  return siglip.from_hf_safetensors(path, template, root=_tower(template),
                                    ignore_unexpected=_VIT_HEADS)


FORMATS: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {
    "big_vision": _big_vision,        # big_vision .npz (SigLIP two-tower or a plain ViT).
    "siglip_hf": _siglip_hf,          # Hugging Face SigLIP safetensors (save_pretrained dir).
    "t5_hf": t5_convert.from_hf,      # Hugging Face T5 / Flan-T5 / UL2 safetensors dir.
    "t5x": t5_convert.from_t5x,       # T5X checkpoint (tensorstore / zarr).
    "paligemma_hf": paligemma.from_hf_safetensors,  # HF PaliGemma (1 or 2) into a whole model.
    "paligemma": paligemma.from_big_vision_npz,     # big_vision PaliGemma .npz, whole model.
    "gemma_hf": paligemma.gemma_from_hf,            # HF Gemma / Gemma 2 LM into the "llm" part.
}


def _guess_format(path: str) -> str:
  if path.endswith(".npz"):
    return "big_vision"
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  config = os.path.join(directory, "config.json")
  if os.path.exists(config):
    with open(config) as f:
      model_type = json.load(f).get("model_type", "")
    if model_type.startswith("siglip"):
      return "siglip_hf"
    if model_type in ("t5", "umt5", "mt5"):
      return "t5_hf"
    if model_type == "paligemma":
      return "paligemma_hf"
    if model_type in ("gemma", "gemma2"):
      return "gemma_hf"
  if os.path.basename(path) == "checkpoint" or os.path.exists(os.path.join(path, "checkpoint")) \
      or (os.path.isdir(path) and any(d.startswith("checkpoint_") for d in os.listdir(path))):
    return "t5x"
  raise ImportSpecError(f"cannot tell the format of {path!r}: write it as FORMAT:PATH with FORMAT "
                     f"one of {sorted(FORMATS)}")


def parse_spec(spec: str) -> tuple[str, str]:
  """"FORMAT:PATH" or "PATH" -> (format, path); "gs://..." paths keep their scheme."""
  head, sep, rest = spec.partition(":")
  if sep and head in FORMATS:
    fmt, path = head, rest
  else:
    fmt, path = "", spec
  if not os.path.exists(path):
    raise ImportSpecError(f"import {spec!r}: {path} does not exist")
  return fmt or _guess_format(path), path


def subtree(template: Mapping[str, Any], path: str) -> Mapping[str, Any]:
  node = template
  for i, part in enumerate(p for p in path.split("/") if p):
    if not isinstance(node, Mapping) or part not in node:
      have = sorted(node) if isinstance(node, Mapping) else []
      where = "/".join(path.split("/")[:i]) or "the top"
      raise ImportSpecError(f"the model has no parameter subtree {path!r} (at {where}: {have})")
    node = node[part]
  return node


def import_params(entries: Sequence[tuple[str, str]], template: Mapping[str, Any]
                  ) -> dict[str, np.ndarray]:
  """[(subtree, spec), ...] -> flat {"subtree/...": array} of the imported leaves.

  `template`: the model's parameter tree (arrays, ShapeDtypeStructs or flax's boxed leaves);
  arrays come back in its dtypes. Two entries may not fill the same parameter.
  """
  out: dict[str, np.ndarray] = {}
  for root, spec in entries:
    fmt, path = parse_spec(spec)
    params = FORMATS[fmt](path, subtree(template, root))
    prefix = root.strip("/") + "/" if root.strip("/") else ""
    for key, value in siglip.flatten(params).items():
      name = prefix + key
      if name in out:
        raise ImportSpecError(f"{name} is filled by two imports; give each subtree once")
      out[name] = np.asarray(value)
  return out


def merge(params: Any, imported: Mapping[str, np.ndarray]) -> Any:
  """`params` (nested dicts) with the leaves named in `imported` replaced."""
  def walk(node, prefix):
    return {k: walk(v, f"{prefix}{k}/") if isinstance(v, Mapping) else imported.get(f"{prefix}{k}", v)
            for k, v in node.items()}
  return walk(params, "")


def entries_from_config(init: Mapping[str, Any], targets: Mapping[str, str]
                        ) -> list[tuple[str, str]]:
  """The (subtree, spec) pairs of a config's `init` block: `import_<role>` through the model's
  table of `targets` (role -> subtree, models/build.py IMPORT_TARGETS), then `imports`."""
  entries = []
  for key in sorted(init):
    m = re.fullmatch(r"import_(\w+)", key)
    if not m or not init[key]:
      continue
    if m.group(1) not in targets:
      raise ImportSpecError(f"config.init.{key}: this model has no {m.group(1)!r} part to import "
                         f"into (it has {sorted(targets)}); use config.init.imports=((subtree, "
                         "spec),)")
    entries.append((targets[m.group(1)], str(init[key])))
  entries += [(str(root), str(spec)) for root, spec in (init.get("imports") or ())]
  return entries
