"""Weight import into vidistill's T5 (models/t5.py): Hugging Face safetensors and T5X checkpoints.

Hugging Face (`T5ForConditionalGeneration`: T5 v1.0, v1.1, Flan-T5, UL2, Flan-UL2):
    config, params = load_hf("/path/to/google-ul2")  # dir with config.json + *.safetensors
T5X (the tensorstore/zarr layout of t5x/checkpoints.py: a `checkpoint` msgpack index whose
leaves are either arrays or tensorstore specs of per-parameter directories named like
`target.encoder.layers_0.attention.query.kernel`):
    params = load_t5x("gs-copy/checkpoint_1000000", t5.decode_variant("t5_1_1_base"))
`params` is the tree `T5(config).apply({"params": params}, ...)` takes; put it under
`params["t5"]` for the video-language model. Every mismatch (missing, unexpected or misshapen
key) is collected and raised as one ConversionError naming each key and both shapes.
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Any, Iterator, Mapping

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import serialization

from vidistill.models import layer_stack
from vidistill.models import t5 as t5_lib


class ConversionError(ValueError):
  """A checkpoint does not fit the model (names, shapes or config)."""


# ----------------------------------------------------------------------------- reading files

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """All tensors of one `.safetensors` file as read-only numpy views of a memory map.

  Read directly (8-byte little-endian header size, JSON header, raw buffer) rather than through
  `safetensors.numpy`, which has no bfloat16: UL2 and Flan-UL2 ship bf16 weights.
  """
  with open(path, "rb") as f:
    (header_size,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(header_size))
  data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info["dtype"] not in _SAFETENSORS_DTYPES:
      raise ConversionError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']!r}")
    start, end = info["data_offsets"]
    out[name] = data[start:end].view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
  return out


def read_hf_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
  """`(tensors, config.json dict or None)` from a model directory or a single .safetensors file.

  A directory holds `model.safetensors`, or shards listed in `model.safetensors.index.json`.
  """
  if not os.path.isdir(path):
    return read_safetensors(path), None
  config = None
  if os.path.exists(os.path.join(path, "config.json")):
    with open(os.path.join(path, "config.json")) as f:
      config = json.load(f)
  index = os.path.join(path, "model.safetensors.index.json")
  if os.path.exists(index):
    with open(index) as f:
      files = sorted(set(json.load(f)["weight_map"].values()))
  elif os.path.exists(os.path.join(path, "model.safetensors")):
    files = ["model.safetensors"]
  else:
    raise ConversionError(
        f"{path}: no model.safetensors or model.safetensors.index.json (PyTorch .bin files are "
        "not read, to avoid pickle: convert them with `save_pretrained(..., "
        "safe_serialization=True)`)")
  tensors = {}
  for name in files:
    tensors.update(read_safetensors(os.path.join(path, name)))
  return tensors, config


# ----------------------------------------------------------------------------- configs

# Hugging Face `feed_forward_proj` -> our activation names. HF maps plain "gelu" to the exact
# erf GELU but "gated-gelu" to the tanh form (`gelu_new`), which is what T5 v1.1 was trained with.
_HF_ACTIVATIONS = {"relu": "relu", "gelu": "gelu_exact", "gelu_new": "gelu", "silu": "silu",
                   "swish": "silu"}


def config_from_hf(hf_config: Mapping[str, Any], tensors: Mapping[str, np.ndarray] | None = None,
                   **overrides: Any) -> t5_lib.T5Config:
  """T5Config from a Hugging Face T5 `config.json` dict.

  Tying follows what Hugging Face loads: embeddings are tied when `tie_word_embeddings` (default
  True) unless the checkpoint holds an `lm_head.weight` that differs from `shared.weight`; the
  emb_dim**-0.5 logit scale follows `scale_decoder_outputs` (written by transformers >= 5) or
  else `tie_word_embeddings`. `dropout_rate` is 0 unless overridden: HF configs carry the 0.1
  fine-tuning default, while the rate belongs in the training config.
  """
  proj = hf_config.get("feed_forward_proj", "relu")
  parts = proj.split("-")
  gated = parts[0] == "gated" and len(parts) == 2
  act = "gelu_new" if proj == "gated-gelu" else parts[-1]
  if act not in _HF_ACTIVATIONS or (len(parts) == 2 and not gated) or len(parts) > 2:
    raise ConversionError(f"config.json feed_forward_proj={proj!r} is not supported; expected "
                          f"'relu', 'gelu', 'gated-gelu' or 'gated-silu'")
  activations = (_HF_ACTIVATIONS[act], "linear") if gated else (_HF_ACTIVATIONS[act],)
  tie_config = hf_config.get("tie_word_embeddings", True)
  tie = tie_config
  if tensors is not None and "lm_head.weight" in tensors and "shared.weight" in tensors:
    if not np.array_equal(tensors["lm_head.weight"], tensors["shared.weight"]):
      tie = False
  scale = hf_config.get("scale_decoder_outputs", tie_config)
  num_layers = hf_config.get("num_layers", 6)
  fields = dict(
      vocab_size=hf_config.get("vocab_size", 32128),
      emb_dim=hf_config.get("d_model", 512),
      num_heads=hf_config.get("num_heads", 8),
      head_dim=hf_config.get("d_kv", 64),
      mlp_dim=hf_config.get("d_ff", 2048),
      num_encoder_layers=num_layers,
      num_decoder_layers=hf_config.get("num_decoder_layers") or num_layers,
      mlp_activations=activations,
      logits_via_embedding=tie,
      scale_logits=None if scale == tie else scale,  # None: T5's own rule, canonical configs
      relpos_num_buckets=hf_config.get("relative_attention_num_buckets", 32),
      relpos_max_distance=hf_config.get("relative_attention_max_distance", 128),
      layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-6),
      dropout_rate=0.0,
  )
  fields.update(overrides)
  return t5_lib.T5Config(**fields)


# ----------------------------------------------------------------------------- name mapping

def expected_shapes(config: t5_lib.T5Config) -> dict[str, tuple[int, ...]]:
  """Flat `"encoder/layers_0/attention/query/kernel"` -> shape of the model's parameters."""
  tokens = jnp.zeros((1, 1), jnp.int32)
  abstract = jax.eval_shape(
      lambda: t5_lib.T5(config).init(jax.random.key(0), tokens, tokens))["params"]
  return {k: tuple(v.shape) for k, v in _flatten(abstract)}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      yield from _flatten(value, path)
    else:
      yield path, getattr(value, "value", value)  # unbox LogicallyPartitioned


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
  out: dict[str, Any] = {}
  for path, value in flat.items():
    node = out
    *parents, leaf = path.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return out


def _kind(path: str) -> str:
  """How a stored 2-D matrix becomes our parameter (see `_to_ours`)."""
  if path.endswith(("query/kernel", "key/kernel", "value/kernel")):
    return "qkv"
  if path.endswith("out/kernel"):
    return "out"
  if path.endswith("/embedding") or path == "embedding":
    return "embedding"  # [vocab, embed] in every layout
  return "same"


def _to_ours(x: np.ndarray, kind: str, shape: tuple[int, ...], transpose: bool) -> np.ndarray:
  """torch Linear stores [out, in] (transpose=True); t5x joins heads and kv into one axis."""
  x = x.T if transpose and kind != "embedding" else x
  return x.reshape(shape) if kind in ("qkv", "out") else x


def _stored_shape(kind: str, shape: tuple[int, ...], transpose: bool) -> tuple[int, ...]:
  if kind == "embedding":
    return tuple(shape)
  if kind == "qkv":
    shape = (shape[0], shape[1] * shape[2])
  elif kind == "out":
    shape = (shape[0] * shape[1], shape[2])
  return tuple(reversed(shape)) if transpose else tuple(shape)


def hf_names(config: t5_lib.T5Config) -> dict[str, str]:
  """Our flat parameter path -> Hugging Face `T5ForConditionalGeneration` tensor name."""
  names = {"token_embedder/embedding": "shared.weight"}
  attn = {"query": "q", "key": "k", "value": "v", "out": "o"}
  mlp = ["wi"] if len(config.mlp_activations) == 1 else [
      f"wi_{i}" for i in range(len(config.mlp_activations))]
  for stack, n_layers in (("encoder", config.num_encoder_layers),
                          ("decoder", config.num_decoder_layers)):
    names[f"{stack}/relpos_bias/rel_embedding"] = (
        f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
    names[f"{stack}/{stack}_norm/scale"] = f"{stack}.final_layer_norm.weight"
    for i in range(n_layers):
      ours, hf = f"{stack}/layers_{i}", f"{stack}.block.{i}.layer"
      if stack == "encoder":
        blocks = [("attention", "pre_attention_layer_norm", "0.SelfAttention")]
      else:
        blocks = [("self_attention", "pre_self_attention_layer_norm", "0.SelfAttention"),
                  ("encoder_decoder_attention", "pre_cross_attention_layer_norm",
                   "1.EncDecAttention")]
      for j, (module, norm, hf_module) in enumerate(blocks):
        names[f"{ours}/{norm}/scale"] = f"{hf}.{j}.layer_norm.weight"
        for ours_w, hf_w in attn.items():
          names[f"{ours}/{module}/{ours_w}/kernel"] = f"{hf}.{hf_module}.{hf_w}.weight"
      k = len(blocks)
      names[f"{ours}/pre_mlp_layer_norm/scale"] = f"{hf}.{k}.layer_norm.weight"
      for w in mlp + ["wo"]:
        names[f"{ours}/mlp/{w}/kernel"] = f"{hf}.{k}.DenseReluDense.{w}.weight"
  if not config.logits_via_embedding:
    names["decoder/logits_dense/kernel"] = "lm_head.weight"
  return names


# Present in HF checkpoints but not parameters of ours: embedding aliases of `shared`, and a
# relative bias HF itself ignores on load (cross-attention has none in T5).
_HF_IGNORED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
               "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight")


def _convert(stored: Mapping[str, np.ndarray], names: Mapping[str, str],
             expected: Mapping[str, tuple[int, ...]], transpose: bool, ignored: set[str],
             source: str, dtype: Any) -> dict[str, Any]:
  """Checks every name and shape (collecting all problems), then reshapes into our layout."""
  problems = []
  flat = {}
  for ours, shape in expected.items():
    name = names.get(ours)
    if name is None:
      problems.append(f"model parameter {ours} (shape {shape}) has no counterpart in the "
                      "checkpoint's layout (its config describes a different model)")
      continue
    if name not in stored:
      problems.append(f"missing key {name!r} (for {ours}, shape "
                      f"{_stored_shape(_kind(ours), shape, transpose)})")
      continue
    kind = _kind(ours)
    want = _stored_shape(kind, shape, transpose)
    got = tuple(stored[name].shape)
    if got != want:
      problems.append(f"wrong shape for {name!r}: checkpoint {got}, model expects {want} "
                      f"(our {ours} {shape})")
      continue
    flat[ours] = np.asarray(_to_ours(np.asarray(stored[name]), kind, shape, transpose), dtype)
  used = {names[k] for k in expected if k in names}
  unexpected = sorted(set(stored) - used - ignored)
  problems += [f"unexpected key {k!r} (shape {tuple(stored[k].shape)})" for k in unexpected]
  if problems:
    raise ConversionError(f"{source} does not fit the T5 config; {len(problems)} problem(s):\n  "
                          + "\n  ".join(problems))
  return _unflatten(flat)


def hf_to_params(tensors: Mapping[str, np.ndarray], config: t5_lib.T5Config, *,
                 source: str = "checkpoint") -> dict[str, Any]:
  """HF `T5ForConditionalGeneration` tensors -> our nested params (numpy, `config.param_dtype`)."""
  ignored = set(_HF_IGNORED)
  if config.logits_via_embedding and "lm_head.weight" in tensors:
    if not np.array_equal(tensors["lm_head.weight"], tensors.get("shared.weight")):
      raise ConversionError(f"{source}: lm_head.weight differs from shared.weight but the config "
                            "ties them (logits_via_embedding=True); set it False to keep the head")
    ignored.add("lm_head.weight")
  unrolled = dataclasses.replace(config, scan_layers=False)
  return _layout(_convert(tensors, hf_names(unrolled), expected_shapes(unrolled), True, ignored,
                          source, config.param_dtype), config)


def _layout(params: dict[str, Any], config: t5_lib.T5Config) -> dict[str, Any]:
  """Checkpoints name layers one by one; a scanned model stacks them (`layers/...`)."""
  return layer_stack.stack_layers(params, "layers") if config.scan_layers else params


def load_hf(path: str, **overrides: Any) -> tuple[t5_lib.T5Config, dict[str, Any]]:
  """`(config, params)` from a Hugging Face T5/Flan-T5/UL2 directory (config.json + safetensors).

  `overrides` replace T5Config fields (e.g. `dtype="bfloat16"`, `dropout_rate=0.1`,
  `remat_policy="full"`); arrays come back in `param_dtype` (default float32; "bfloat16" halves
  host memory for UL2 20B).
  """
  tensors, hf_config = read_hf_checkpoint(path)
  if hf_config is None:
    raise ConversionError(f"{path}: need the model directory with config.json, not a lone file "
                          "(or call config_from_hf + hf_to_params yourself)")
  config = config_from_hf(hf_config, tensors, **overrides)
  return config, hf_to_params(tensors, config, source=path)


# ----------------------------------------------------------------------------- T5X

def _find_t5x_index(path: str, step: int | None) -> str:
  """The `checkpoint` msgpack file from a file, a `checkpoint_N` dir or a model dir."""
  if os.path.isfile(path):
    return path
  if step is not None and os.path.isdir(os.path.join(path, f"checkpoint_{step}")):
    path = os.path.join(path, f"checkpoint_{step}")
  elif not os.path.exists(os.path.join(path, "checkpoint")):
    steps = [int(d.split("_")[1]) for d in os.listdir(path) if d.startswith("checkpoint_")
             and d.split("_")[1].isdigit()] if os.path.isdir(path) else []
    if not steps:
      raise ConversionError(f"{path}: not a T5X checkpoint (no `checkpoint` file and no "
                            "checkpoint_<step> directories)")
    path = os.path.join(path, f"checkpoint_{max(steps)}")
  return os.path.join(path, "checkpoint")


def _is_ts_spec(x: Any) -> bool:
  return isinstance(x, Mapping) and "driver" in x


def _read_ts(spec: Mapping[str, Any], ckpt_dir: str) -> np.ndarray:
  import tensorstore as ts  # only T5X import needs it
  spec = json.loads(json.dumps(spec))  # deep copy of plain data
  # Written chunking/compression need not be repeated to open; t5x drops them the same way.
  spec.get("metadata", {}).pop("chunks", None)
  spec.get("metadata", {}).pop("compressor", None)
  kvstore = spec.get("kvstore", {})
  if "path" in kvstore:  # tensorstore >= 0.1.14 layout
    spec["kvstore"] = {"driver": "file", "path": os.path.join(ckpt_dir, kvstore["path"])}
  elif "path" in spec:  # older layout: path next to the driver
    spec["kvstore"] = {"driver": "file", "path": os.path.join(ckpt_dir, spec.pop("path"))}
  else:
    raise ConversionError(f"{ckpt_dir}: tensorstore spec without a path: {spec}")
  return np.asarray(ts.open(spec, open=True).result().read().result())


def read_t5x_target(path: str, step: int | None = None) -> dict[str, np.ndarray]:
  """The `target` (model parameters) of a T5X checkpoint, flat `"encoder/..."` -> array."""
  index = _find_t5x_index(path, step)
  with open(index, "rb") as f:
    contents = serialization.msgpack_restore(f.read())
  state = contents.get("optimizer", contents)  # version >= 1 nests the optimizer state
  if "target" not in state:
    raise ConversionError(f"{index}: no 'target' in the checkpoint (keys {sorted(state)})")
  ckpt_dir = os.path.dirname(index)
  out = {}

  def walk(node, prefix):
    for key, value in node.items():
      name = f"{prefix}/{key}" if prefix else key
      if _is_ts_spec(value):
        out[name] = _read_ts(value, ckpt_dir)
      elif isinstance(value, Mapping):
        walk(value, name)
      elif value is not None:
        out[name] = np.asarray(value)

  walk(state["target"], "")
  return out


def t5x_to_params(target: Mapping[str, np.ndarray], config: t5_lib.T5Config, *,
                  source: str = "T5X checkpoint") -> dict[str, Any]:
  """Flat T5X target -> our nested params (`config.param_dtype`): same names, attention kernels
  un-joined."""
  expected = expected_shapes(dataclasses.replace(config, scan_layers=False))
  return _layout(_convert(target, {k: k for k in expected}, expected, False, set(), source,
                          config.param_dtype), config)


def load_t5x(path: str, config: t5_lib.T5Config, *, step: int | None = None) -> dict[str, Any]:
  """Params from a T5X checkpoint, in `config.param_dtype`. T5X keeps no config next to the
  weights (it is in gin), so give the matching T5Config, e.g. `t5.decode_variant("t5_1_1_xl")`.
  `step`: which `checkpoint_<step>` of a model directory (default: the latest)."""
  return t5x_to_params(read_t5x_target(path, step), config, source=path)


# ----------------------------------------------------------------------------- into a template

def template_shapes(template: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
  """Flat path -> shape of a T5 parameter tree (arrays, ShapeDtypeStructs or boxed leaves), in
  the unrolled layout checkpoints name (a scanned `layers/...` [n, ...] is `layers_i/...`)."""
  out = {}
  for key, value in _flatten(template):
    head, sep, rest = key.partition("/layers/")
    if not sep:
      out[key] = tuple(value.shape)
      continue
    for i in range(value.shape[0]):
      out[f"{head}/layers_{i}/{rest}"] = tuple(value.shape[1:])
  return out


def _to_template_layout(params: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
  scanned = any("/layers/" in k for k, _ in _flatten(template))
  return layer_stack.stack_layers(params, "layers") if scanned else params


def _template_dtype(template: Mapping[str, Any]) -> Any:
  return next(iter(_flatten(template)))[1].dtype


def from_hf(path: str, template: Mapping[str, Any]) -> dict[str, Any]:
  """A Hugging Face T5/UL2 checkpoint -> params shaped like `template` (our T5's parameter tree,
  e.g. a VLM's params["t5"]), in the template's dtype.

  `path` is the model directory or its `model.safetensors` (config.json beside it). The layout
  (layers, gating, tied head) is read from config.json; every parameter of the template must be in
  the file with the same shape and every tensor of the file must be used, else ConversionError
  names each key and both shapes.
  """
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  if not os.path.exists(os.path.join(directory, "config.json")):
    raise ConversionError(f"{path}: no config.json beside the weights (a Hugging Face T5 "
                          "checkpoint is a directory written by save_pretrained)")
  tensors, hf_config = read_hf_checkpoint(directory)
  config = config_from_hf(hf_config, tensors)
  ignored = set(_HF_IGNORED)
  if config.logits_via_embedding and "lm_head.weight" in tensors:
    ignored.add("lm_head.weight")
  return _to_template_layout(_convert(tensors, hf_names(config), template_shapes(template), True,
                                     ignored, path, _template_dtype(template)), template)


def from_t5x(path: str, template: Mapping[str, Any], *, step: int | None = None
             ) -> dict[str, Any]:
  """A T5X checkpoint (model dir, checkpoint_<step> dir or its `checkpoint` file) -> params shaped
  like `template`, in its dtype; the template's names are T5X's, so it alone sets the layout."""
  expected = template_shapes(template)
  return _to_template_layout(_convert(read_t5x_target(path, step), {k: k for k in expected},
                                      expected, False, set(), path, _template_dtype(template)),
                             template)
