"""Logical axis names, the rules that map them to mesh axes, and sharding helpers.

Every parameter is created with `nn.with_logical_partitioning(init, names)` and key activations are
constrained with `nn.with_logical_constraint(x, names)` (t5x style), so data / FSDP / tensor
parallelism is a change of RULES, not of model code.

Logical axis names used by vidistill models:
  batch           examples                                     -> ('data', 'fsdp')
  length          sequence positions (tokens, patches)         -> unsharded
  frames          video frames                                 -> unsharded
  embed           model width (d_model)                        -> 'fsdp' (params fully sharded)
  mlp             MLP hidden width                             -> 'model' (tensor parallel)
  heads           attention heads                              -> 'model'
  kv              per-head width                               -> unsharded
  vocab           vocabulary                                   -> 'model'
  norm            LayerNorm scale/bias, scalars                -> unsharded
  relpos_buckets  T5 relative-position buckets                 -> unsharded
  posemb          learned position-embedding table positions   -> unsharded
  layers          the stacked layer axis of scanned models     -> unsharded
A name missing from the rules is unsharded, so a new name is safe by default; list it here anyway.
Dimensions named None (e.g. the patch-embedding kernel's H, W, in-channels) are never sharded.
flax forbids the same logical name twice in one array, hence None rather than a repeated name.

Rules are an ordered tuple of (logical name, mesh axis | tuple of mesh axes | None); the first rule
whose mesh axes are still free for the array wins (flax semantics). 'batch' comes first so that an
activation [batch, length, embed] shards batch over ('data', 'fsdp') and leaves embed replicated.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import flax.linen as nn
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

BATCH_AXES = ("data", "fsdp")

DEFAULT_RULES: Rules = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("vocab", "model"),
    ("kv", None),
    ("length", None),
    ("frames", None),
    ("norm", None),
    ("relpos_buckets", None),
    ("posemb", None),
    ("layers", None),
)


class PartitioningError(ValueError):
  """Rules or meshes that do not fit together."""


def make_rules(overrides: Sequence[Sequence[Any]] | None = None,
               base: Rules = DEFAULT_RULES) -> Rules:
  """Returns `base` with entries replaced/added from `overrides` (a config list of pairs).

  `overrides` is e.g. `[("embed", None), ("mlp", ("fsdp", "model"))]`: a logical name already in
  `base` gets the new mesh axes in its original position; a new name is appended. Lists coming
  from configs (ml_collections turns tuples into lists) are accepted.
  """
  rules = {name: axes for name, axes in base}
  order = [name for name, _ in base]
  for i, pair in enumerate(overrides or ()):
    if len(pair) != 2 or not isinstance(pair[0], str):
      raise PartitioningError(
          f"sharding rule #{i} = {pair!r}: expected a (logical_name, mesh_axes) pair, e.g. "
          "('embed', 'fsdp') or ('batch', ('data', 'fsdp'))")
    name, axes = pair
    if isinstance(axes, list):
      axes = tuple(axes)
    if not (axes is None or isinstance(axes, str) or
            (isinstance(axes, tuple) and all(isinstance(a, str) for a in axes))):
      raise PartitioningError(
          f"sharding rule for {name!r}: mesh axes {axes!r} must be None, a mesh-axis name or a "
          "tuple of names")
    if name not in rules:
      order.append(name)
    rules[name] = axes
  return tuple((name, rules[name]) for name in order)


def restrict_rules(rules: Rules, mesh: Mesh) -> Rules:
  """Drops mesh axes the mesh lacks (so 'fsdp' rules work on a ('data',)-only mesh).

  A mesh axis named by the rules but absent from the mesh has size 1 in effect; keeping it would
  make NamedSharding fail.
  """
  names = set(mesh.axis_names)
  out = []
  for logical, axes in rules:
    if axes is None:
      out.append((logical, None))
    elif isinstance(axes, str):
      out.append((logical, axes if axes in names else None))
    else:
      kept = tuple(a for a in axes if a in names)
      out.append((logical, kept if kept else None))
  return tuple(out)


def logical_to_spec(names: Sequence[str | None] | None, rules: Rules = DEFAULT_RULES) -> P:
  """Logical axis names of one array -> mesh PartitionSpec (unknown names: unsharded)."""
  spec = nn.logical_to_mesh_axes(names, rules)
  return P() if spec is None else spec


def _is_boxed(x: Any) -> bool:
  return isinstance(x, nn.Partitioned)


def param_shardings(abstract_variables: Any, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> Any:
  """Pytree of NamedSharding matching the UNBOXED variables, from boxed abstract variables.

  A dimension whose size does not divide its mesh axes is left unsharded instead of failing
  (tiny test models have e.g. 2 heads on a 4-way 'model' axis).
  """
  rules = restrict_rules(rules, mesh)

  def one(x):
    if not _is_boxed(x):
      return NamedSharding(mesh, P())
    spec = logical_to_spec(x.names, rules)
    return NamedSharding(mesh, _divisible_spec(spec, x.value.shape, mesh))

  return jax.tree.map(one, abstract_variables, is_leaf=_is_boxed)


def _divisible_spec(spec: P, shape: Sequence[int], mesh: Mesh) -> P:
  out = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    if axes is None:
      out.append(None)
      continue
    size = 1
    for a in (axes,) if isinstance(axes, str) else axes:
      size *= mesh.shape[a]
    out.append(axes if dim % size == 0 else None)
  return P(*out)


def data_sharding(mesh: Mesh, batch_axes: Sequence[str] = BATCH_AXES) -> NamedSharding:
  """Sharding of input batches: leading dim over the batch mesh axes present, rest replicated."""
  axes = tuple(a for a in batch_axes if a in mesh.axis_names)
  return NamedSharding(mesh, P(axes if axes else None))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def unbox(tree: Any) -> Any:
  """Strips LogicallyPartitioned boxes: the plain params that `module.apply` takes."""
  return nn.meta.unbox(tree)


@contextlib.contextmanager
def axis_rules(mesh: Mesh, rules: Rules = DEFAULT_RULES) -> Iterator[None]:
  """Context in which `nn.with_logical_constraint` really constrains (mesh + rules set).

  Trace (call jit'd functions for the first time) inside it; outside it the constraints are no-ops.
  """
  with jax.set_mesh(mesh), nn.logical_axis_rules(restrict_rules(rules, mesh)):
    yield


def init_sharded(init_fn: Callable[..., Any], mesh: Mesh, *args: Any,
                 rules: Rules = DEFAULT_RULES) -> tuple[Any, Any]:
  """Runs `init_fn(*args)` jitted so that each variable is created directly in its shard.

  `init_fn` returns boxed variables (e.g. `functools.partial(model.init, train=False)` called with
  `(rng, x)`). Returns `(variables, shardings)`: unboxed variables laid out as the rules say, and
  their NamedSharding pytree (reuse it as `in_shardings`/`out_shardings` of train steps). Nothing
  is ever materialised in full on one device (big_vision: eval_shape first, then jit with
  out_shardings).
  """
  with axis_rules(mesh, rules):
    abstract = jax.eval_shape(init_fn, *args)
    shardings = param_shardings(abstract, mesh, rules)
    variables = jax.jit(lambda *a: unbox(init_fn(*a)), out_shardings=shardings)(*args)
  return variables, shardings


def shard_params(variables: Any, shardings: Any) -> Any:
  """Places (host or single-device) arrays onto the mesh with the given shardings."""
  return jax.tree.map(jax.device_put, variables, shardings)
