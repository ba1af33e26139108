"""Parameters addressed by their "/"-joined path (big_vision): `video_encoder/image/Transformer/
encoderblock_0/MlpBlock_0/Dense_0/kernel`. Freezing and weight-decay masks, sharding rules,
checkpoint key maps and imports all name parameters this way.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax


def _key_name(key: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def path_name(path: Sequence[Any]) -> str:
  """A jax tree path -> "a/b/kernel"."""
  return "/".join(_key_name(k) for k in path)


def path_names(tree: Any) -> list[str]:
  """The "/"-joined path of every leaf of `tree`, in leaf order."""
  return [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def flatten(tree: Any) -> dict[str, Any]:
  """{"a/b/kernel": leaf} for every leaf of a pytree."""
  return {path_name(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
