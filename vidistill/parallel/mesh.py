"""Device meshes: ('data', 'fsdp', 'model') by default, sizes from configs, -1 = "the rest"."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh

DEFAULT_AXES = ("data", "fsdp", "model")


class MeshError(ValueError):
  """A mesh shape that does not fit the devices."""


def resolve_mesh_shape(shape: Mapping[str, int], num_devices: int) -> dict[str, int]:
  """Fills the one `-1` entry so the product equals `num_devices`; checks divisibility.

  `{"data": -1, "fsdp": 2, "model": 1}` on 8 devices -> `{"data": 4, "fsdp": 2, "model": 1}`.
  """
  shape = dict(shape)
  if not shape:
    raise MeshError("mesh shape is empty; give e.g. {'data': -1, 'fsdp': 1, 'model': 1}")
  for name, size in shape.items():
    if not isinstance(size, (int, np.integer)) or (size < 1 and size != -1):
      raise MeshError(f"mesh axis {name!r} has size {size!r}; sizes are positive ints or -1")
  free = [n for n, s in shape.items() if s == -1]
  if len(free) > 1:
    raise MeshError(f"mesh shape {shape}: at most one axis may be -1, got {free}")
  fixed = math.prod(s for s in shape.values() if s != -1)
  if free:
    if num_devices % fixed:
      raise MeshError(
          f"mesh shape {shape}: the fixed axes multiply to {fixed}, which does not divide the "
          f"{num_devices} devices; choose sizes whose product divides {num_devices}")
    shape[free[0]] = num_devices // fixed
  elif fixed != num_devices:
    raise MeshError(
        f"mesh shape {shape} has {fixed} devices but {num_devices} are available; "
        "make the product equal the device count or set one axis to -1")
  return {n: int(s) for n, s in shape.items()}


def make_mesh(shape: Mapping[str, int] | None = None,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds a Mesh with axis names in the order of `shape` (default all devices on 'data').

  Axes are `AxisType.Auto` (pjit semantics: XLA propagates shardings between the constraints we
  place). On a real topology `jax.make_mesh` orders devices for fast collectives; an explicit
  `devices` list is laid out in the given order.
  """
  shape = dict(shape) if shape is not None else {"data": -1, "fsdp": 1, "model": 1}
  devices = list(devices) if devices is not None else jax.devices()
  sizes = resolve_mesh_shape(shape, len(devices))
  names = tuple(sizes)
  dims = tuple(sizes[n] for n in names)
  axis_types = (AxisType.Auto,) * len(names)
  if devices == jax.devices():
    return jax.make_mesh(dims, names, axis_types=axis_types)
  return Mesh(np.asarray(devices, dtype=object).reshape(dims), names, axis_types=axis_types)
