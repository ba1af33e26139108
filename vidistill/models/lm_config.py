"""What every language model's config holds (t5.T5Config, gemma.GemmaConfig): the vocabulary, the
attention and MLP sizes, how it computes (dtypes, rematerialisation, scanned layers), the checks
of those fields, and the decoding of a size name into a config.

The shared sizes have no defaults: a config is built from a named size (`decode_variant`, the
model's `SIZES` table holds the numbers) or from a checkpoint's config (vidistill/convert).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, TypeVar

import jax.numpy as jnp

from vidistill.config_args import ConfigError
from vidistill.models import layer_stack


@dataclasses.dataclass(frozen=True, kw_only=True)
class LMConfig:
  """The fields both language models share; subclasses add theirs and extend `positive`."""
  vocab_size: int
  num_heads: int
  head_dim: int
  mlp_dim: int
  dtype: Any = jnp.float32  # compute dtype
  param_dtype: Any = jnp.float32
  # One of layer_stack.REMAT_POLICIES: what each layer rematerialises in the backward.
  remat_policy: str = "none"
  # nn.scan over the layers: parameters `.../layers/...` with a leading layer axis (t5x's and
  # big_vision's scanned layouts; layer_stack.stack_layers converts), compiled once.
  scan_layers: bool = False

  positive: ClassVar[tuple[str, ...]] = ("vocab_size", "num_heads", "head_dim", "mlp_dim")

  def __post_init__(self):
    name = type(self).__name__
    object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
    object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))
    for field in self.positive:
      if getattr(self, field) <= 0:
        raise ConfigError(f"{name}.{field}={getattr(self, field)} must be positive")
    layer_stack.check_policy(self.remat_policy, f"{name}.remat_policy")


Config = TypeVar("Config", bound=LMConfig)


def decode_variant(cls: type[Config], sizes: Mapping[str, Mapping[str, Any]], variant: str,
                   overrides: Mapping[str, Any], *, family: str,
                   aliases: Mapping[str, str] | None = None) -> Config:
  """`cls` of the size `variant` (a name in `sizes` or `aliases`); `overrides` replace fields.
  Errors name the unknown size or fields and list the known ones."""
  aliases = aliases or {}
  name = aliases.get(variant, variant)
  if name not in sizes:
    raise ConfigError(f"unknown {family} size {variant!r}; known: "
                      f"{sorted(sizes) + sorted(aliases)}")
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ConfigError(f"decode_variant({variant!r}): unknown {cls.__name__} fields {unknown}; "
                      f"known: {sorted(fields)}")
  return cls(**{**sizes[name], **overrides})
