"""Tests for vidistill/parallel/partitioning.py on 8 fake CPU devices: rules, shardings, init."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from vidistill.models import vit
from vidistill.parallel import mesh as mesh_lib
from vidistill.parallel import partitioning as part


def test_default_rules_map_names_as_documented():
  spec = part.logical_to_spec
  assert spec(("batch", "length", "embed")) == P(("data", "fsdp"), None, None)
  assert spec(("embed", "mlp")) == P("fsdp", "model")
  assert spec(("embed", "heads", "kv")) == P("fsdp", "model", None)
  assert spec(("vocab", "embed")) == P("model", "fsdp")
  assert spec(("frames", "embed")) == P(None, "fsdp")
  assert spec(("norm",)) == P(None)
  assert spec(("some_new_name", "embed")) == P(None, "fsdp")


def test_overrides_replace_in_place_and_append():
  rules = part.make_rules([["embed", None], ["mlp", ["fsdp", "model"]], ["extra", "data"]])
  d = dict(rules)
  assert d["embed"] is None and d["mlp"] == ("fsdp", "model") and d["extra"] == "data"
  assert [n for n, _ in rules][:2] == ["batch", "embed"]  # order (precedence) kept
  with pytest.raises(part.PartitioningError, match="rule #0"):
    part.make_rules([("embed",)])
  with pytest.raises(part.PartitioningError, match="'mlp'"):
    part.make_rules([("mlp", 3)])


def test_restrict_rules_drops_missing_mesh_axes():
  mesh = mesh_lib.make_mesh({"data": -1})
  rules = dict(part.restrict_rules(part.DEFAULT_RULES, mesh))
  assert rules["batch"] == ("data",) and rules["embed"] is None and rules["mlp"] is None
  assert part.data_sharding(mesh).spec == P(("data",))
  assert part.replicated(mesh).spec == P()


@pytest.fixture(scope="module")
def mesh():
  return mesh_lib.make_mesh({"data": 2, "fsdp": 2, "model": 2})


@pytest.fixture(scope="module")
def vit_setup(mesh):
  model = vit.ViT(variant="mu/8", depth=1, head_dim=16)
  x = jax.random.uniform(jax.random.key(1), (8, 32, 32, 3), minval=-1, maxval=1)
  init = functools.partial(model.init)
  variables, shardings = part.init_sharded(init, mesh, jax.random.key(0), x)
  return model, x, variables, shardings


def test_init_sharded_places_params_as_the_rules_say(vit_setup):
  _, _, variables, _ = vit_setup
  p = variables["params"]
  blk = p["Transformer"]["encoderblock_0"]
  assert blk["MlpBlock_0"]["Dense_0"]["kernel"].sharding.spec == P("fsdp", "model")
  assert blk["MlpBlock_0"]["Dense_1"]["kernel"].sharding.spec == P("model", "fsdp")
  q = blk["MultiHeadDotProductAttention_0"]["query"]["kernel"]
  assert q.sharding.spec == P("fsdp", "model", None)
  # Really distributed: each device holds a quarter of the [32, 64] MLP kernel.
  shard = blk["MlpBlock_0"]["Dense_0"]["kernel"].addressable_shards[0]
  assert shard.data.shape == (16, 32)
  assert blk["LayerNorm_0"]["scale"].sharding.spec == P(None)
  assert p["pos_embedding"].sharding.spec == P(None, None, "fsdp")


def test_indivisible_dims_stay_unsharded():
  mesh = mesh_lib.make_mesh({"model": 8})
  model = vit.ViT(variant="mu/8")  # 2 heads cannot split 8 ways
  abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  sh = part.param_shardings(abstract, mesh)
  q = sh["params"]["Transformer"]["encoderblock_0"]["MultiHeadDotProductAttention_0"]["query"]
  assert q["kernel"].spec == P(None, None, None)
  mlp = sh["params"]["Transformer"]["encoderblock_0"]["MlpBlock_0"]["Dense_0"]["kernel"]
  assert mlp.spec == P(None, "model")


def test_sharded_forward_equals_single_device(vit_setup, mesh):
  model, x, variables, shardings = vit_setup
  single = jax.device_get(variables)
  want, want_aux = jax.jit(lambda v, x: model.apply(v, x))(single, x)

  with part.axis_rules(mesh):
    fwd = jax.jit(lambda v, x: model.apply(v, x), in_shardings=(shardings, part.data_sharding(mesh)))
    got, got_aux = fwd(variables, jax.device_put(x, part.data_sharding(mesh)))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(np.asarray(got_aux["encoded"]), np.asarray(want_aux["encoded"]),
                             rtol=2e-5, atol=2e-5)
  assert got.sharding.spec[0] == ("data", "fsdp")
