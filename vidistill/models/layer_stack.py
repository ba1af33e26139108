"""A stack of identical layers, unrolled or scanned, with a rematerialisation policy.

    block = layer_stack.remat(Encoder1DBlock, "full", static_argnums=(3,))
    Stack = layer_stack.scanned(Encoder1DBlock, depth, "dots", in_axes=(nn.broadcast,) * 2,
                                static_argnums=(3,))
    x, _ = Stack(..., name="encoderblock")(x, mask, deterministic)

Unrolled, layer i is its own subtree `<name>_<i>` (big_vision `encoderblock_0`, t5x `layers_0`):
compile time and program size grow with the depth (48 ViT-G blocks, 24 + 24 UL2-3B layers).
Scanned (`nn.scan`, as big_vision's ViT and MaxText), the body is compiled once and every parameter
gets a leading layer axis under one subtree `<name>`: `encoderblock/MlpBlock_0/Dense_0/kernel
[depth, D, M]`, logical axis name "layers" (never sharded). `stack_layers` / `unstack_layers`
convert parameter trees between the two layouts, so checkpoints and imported weights serve both.

A scanned layer's `__call__` must return `(carry, per_layer_output)`; `as_carry` adapts a layer
that returns only its output.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np

from vidistill.config_args import ConfigError

# What the backward pass keeps of each layer's forward (the rest is recomputed).
REMAT_POLICIES = {
    "none": None,  # no rematerialisation: every activation is kept
    "full": jax.checkpoint_policies.nothing_saveable,  # recompute the whole layer
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,  # keep the matmul outputs
}
LAYER_AXIS = "layers"  # logical name of the scanned axis (unsharded by the default rules)


def check_policy(policy: str, where: str) -> None:
  if policy not in REMAT_POLICIES:
    raise ConfigError(f"{where}={policy!r} is not one of {sorted(REMAT_POLICIES)}")


def remat(cls: type[nn.Module], policy: str, *, static_argnums: tuple[int, ...] = (),
          prevent_cse: bool = True) -> Any:
  """`cls` rematerialised with `policy` ("none": `cls` itself). `static_argnums` count `self`
  as 0 (flax's lifted remat); Python bools such as `deterministic` must be static."""
  check_policy(policy, "remat_policy")
  if policy == "none":
    return cls
  return nn.remat(cls, policy=REMAT_POLICIES[policy], static_argnums=static_argnums,
                  prevent_cse=prevent_cse)


def as_carry(cls: type[nn.Module]) -> type[nn.Module]:
  """A subclass of `cls` whose `__call__` returns `(output, None)`: the form `nn.scan` needs.

  Same fields and parameter names as `cls` (a subclass, not a wrapper module, so no extra level
  appears in the parameter tree).
  """
  def __call__(self, x, *args, **kwargs):  # pylint: disable=invalid-name
    return super(carried, self).__call__(x, *args, **kwargs), None

  carried = type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__})
  return carried


def scanned(cls: type[nn.Module], length: int, policy: str, *, in_axes: Any, out_axes: Any = 0,
            static_argnums: tuple[int, ...] = (), methods: Mapping[str, Any] | None = None) -> Any:
  """`cls` applied `length` times by `nn.scan`: parameters stacked on a leading "layers" axis.

  `cls.__call__(carry, *args) -> (carry, ys)`; `in_axes` says for each of `args` whether it is
  scanned over (0: a per-layer input such as a KV cache) or the same for every layer
  (`nn.broadcast`); `out_axes` where the per-layer outputs are stacked. Dropout and init rngs differ per layer. `methods`: other methods to scan,
  `{name: nn.scan keyword overrides}` (the `__call__` entry is added).
  """
  # prevent_cse=False: inside a scan the loop already keeps XLA from merging the recomputation
  # with the forward pass (jax.checkpoint's documentation), and the barriers would slow it.
  body = remat(cls, policy, static_argnums=static_argnums, prevent_cse=False)
  kw = dict(variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
            length=length, metadata_params={nn.PARTITION_NAME: LAYER_AXIS})
  if methods:
    per_method = {"__call__": dict(kw, in_axes=in_axes, out_axes=out_axes)}
    per_method.update({name: dict(kw, **over) for name, over in methods.items()})
    return nn.scan(body, methods=per_method)
  return nn.scan(body, in_axes=in_axes, out_axes=out_axes, **kw)


# ------------------------------------------------------------------ parameter tree layouts

def stack_layers(tree: Mapping[str, Any], name: str) -> dict[str, Any]:
  """Unrolled -> scanned layout: every dict holding `<name>_0 .. <name>_{n-1}` gets one entry
  `<name>` whose leaves are the layers' leaves stacked on a new leading axis (numpy in, numpy out;
  jax arrays stay jax arrays). Other entries are copied unchanged."""
  pattern = re.compile(rf"{re.escape(name)}_(\d+)")
  out: dict[str, Any] = {}
  layers: dict[int, Any] = {}
  for key, value in tree.items():
    m = pattern.fullmatch(str(key))
    if m:
      layers[int(m.group(1))] = value
    elif isinstance(value, Mapping):
      out[key] = stack_layers(value, name)
    else:
      out[key] = value
  if layers:
    if sorted(layers) != list(range(len(layers))):
      raise ValueError(f"layers {sorted(layers)} of {name!r} are not numbered 0..n-1")
    if name in out:
      raise ValueError(f"both {name!r} and {name}_0.. present: the tree mixes the two layouts")
    stack = np.stack if all(isinstance(x, np.ndarray) for x in jax.tree.leaves(layers)) else (
        jax.numpy.stack)
    out[name] = jax.tree.map(lambda *xs: stack(xs), *[layers[i] for i in range(len(layers))])
  return out


def unstack_layers(tree: Mapping[str, Any], name: str) -> dict[str, Any]:
  """Scanned -> unrolled layout, the inverse of `stack_layers`."""
  out: dict[str, Any] = {}
  for key, value in tree.items():
    if key == name and isinstance(value, Mapping):
      depth = {int(np.shape(x)[0]) for x in jax.tree.leaves(value)}
      if len(depth) != 1:
        raise ValueError(f"the leaves under {name!r} disagree on the layer count: {sorted(depth)}")
      for i in range(depth.pop()):
        out[f"{name}_{i}"] = jax.tree.map(lambda x, i=i: x[i], value)
    elif isinstance(value, Mapping):
      out[key] = unstack_layers(value, name)
    else:
      out[key] = value
  return out


def is_scanned(tree: Mapping[str, Any], names: Sequence[str]) -> bool:
  """Whether any dict in `tree` holds a scanned stack named one of `names`."""
  for key, value in tree.items():
    if isinstance(value, Mapping):
      if key in names or is_scanned(value, names):
        return True
  return False
