"""Orbax checkpoints: exact round trip, keep-N, partial steps never used, params-only loads."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import state as state_lib


def _mesh():
  return jax.make_mesh((4, 2), ("data", "model"))


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return {"img": {"Dense_0": {"kernel": jnp.asarray(rng.normal(size=(4, 6)), jnp.float32),
                              "bias": jnp.asarray(rng.normal(size=6), jnp.float32)}},
          "txt": {"kernel": jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)}}


def _state(seed=0, step=0):
  params = _params(seed)
  tx = optax.multi_transform({"t": optax.adamw(1e-3), "f": optax.set_to_zero()},
                             {"img": {"Dense_0": {"kernel": "t", "bias": "f"}}, "txt": "t"})
  opt_state = tx.init(params)
  _, opt_state = tx.update(params, opt_state, params)  # Non-trivial moments.
  s = state_lib.new_state(params, opt_state, jax.random.PRNGKey(seed))
  return s.replace(step=jnp.asarray(step, jnp.int32))


def _abstract(state, sharding=None):
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding or x.sharding), state)


def _assert_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_exact_and_reshards(tmp_path):
  ckpts = ckpt_lib.Checkpoints(str(tmp_path / "checkpoints"), keep=0)
  state = _state(step=5)
  ckpts.save(5, state, {"step": 5, "data_position": 5})
  ckpts.wait()
  # Restore onto a mesh: replicated over 8 devices.
  target = _abstract(state, NamedSharding(_mesh(), P()))
  restored, meta = ckpts.restore(5, target)
  _assert_equal(restored, state)
  assert meta == {"step": 5, "data_position": 5} and ckpts.read_meta(5) == meta
  assert restored.params["txt"]["kernel"].sharding == NamedSharding(_mesh(), P())
  ckpts.close()


def test_keep_n_and_latest(tmp_path):
  ckpts = ckpt_lib.Checkpoints(str(tmp_path), keep=2)
  for step in (1, 2, 3):
    ckpts.save(step, _state(step=step), {"step": step, "data_position": step})
  ckpts.wait()
  assert ckpts.all_steps() == [2, 3] and ckpts.latest_step() == 3
  ckpts.close()


def test_unfinished_steps_are_never_used(tmp_path):
  ckpts = ckpt_lib.Checkpoints(str(tmp_path), keep=0)
  ckpts.save(2, _state(step=2), {"step": 2, "data_position": 2})
  ckpts.wait()
  ckpts.close()
  # What a kill mid-save leaves (orbax's tmp dir), a step dir without the commit marker (a kill
  # during orbax's deletion of an old step), and what earlier versions set such a step aside as.
  os.makedirs(tmp_path / "4.orbax-checkpoint-tmp-1700000000" / "params")
  os.makedirs(tmp_path / "6" / "params")
  (tmp_path / "6" / "params" / "garbage").write_text("half written")
  os.makedirs(tmp_path / "1.incomplete" / "params")
  reopened = ckpt_lib.Checkpoints(str(tmp_path), keep=0)
  assert reopened.latest_step() == 2
  state, meta = reopened.restore(2, _abstract(_state()))
  assert meta["step"] == 2
  reopened.wait()
  reopened.close()
  # Only the complete step is left: unfinished ones are removed, not kept forever.
  assert sorted(os.listdir(tmp_path)) == ["2"]


def test_restore_with_other_tree_is_a_clear_error(tmp_path):
  ckpts = ckpt_lib.Checkpoints(str(tmp_path), keep=0)
  ckpts.save(1, _state(), {"step": 1, "data_position": 1})
  ckpts.wait()
  other = _state()
  other = other.replace(params={"just": jnp.zeros(3)})
  with pytest.raises(ckpt_lib.CheckpointError, match="does not match"):
    ckpts.restore(1, _abstract(other))
  ckpts.close()


@pytest.fixture(scope="module")
def saved_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("stage1")
  ckpts = ckpt_lib.Checkpoints(str(workdir / ckpt_lib.SUBDIR), keep=0)
  ckpts.save(7, _state(seed=1), {"step": 7, "data_position": 7})
  ckpts.wait()
  ckpts.close()
  return str(workdir)


def test_load_params_same_tree_from_workdir_checkpoints_dir_or_step_dir(saved_workdir):
  want = _params(1)
  sharded = jax.tree.map(lambda x: jax.device_put(x, NamedSharding(_mesh(), P())), _params(0))
  for path in (saved_workdir, os.path.join(saved_workdir, "checkpoints"),
               os.path.join(saved_workdir, "checkpoints", "7")):
    loaded = ckpt_lib.load_params(path, sharded)
    _assert_equal(loaded, want)
    assert loaded["img"]["Dense_0"]["kernel"].sharding == NamedSharding(_mesh(), P())


def test_load_params_mapped_subtree_non_strict(saved_workdir):
  dest = {"encoder": {"vision": {"Dense_0": {"kernel": jnp.zeros((4, 6)),
                                             "bias": jnp.zeros(6)}}},
          "head": {"kernel": jnp.full((3, 3), 9.0)}}
  loaded = ckpt_lib.load_params(saved_workdir, dest, strict=False,
                                params_map=[(r"img/(.*)", r"encoder/vision/\1")])
  _assert_equal(loaded["encoder"]["vision"], _params(1)["img"])
  np.testing.assert_array_equal(np.asarray(loaded["head"]["kernel"]), 9.0)  # Kept its init.
  with pytest.raises(ckpt_lib.CheckpointError, match=r"model parameters not in the checkpoint: "
                     r"\['head/kernel'\]"):
    ckpt_lib.load_params(saved_workdir, dest, strict=True,
                         params_map=[(r"img/(.*)", r"encoder/vision/\1")])


def test_load_params_errors_name_keys_and_shapes(saved_workdir):
  wrong_shape = _params(0)
  wrong_shape["txt"]["kernel"] = jnp.zeros((6, 3))
  with pytest.raises(ckpt_lib.CheckpointError, match=r"txt/kernel \(6, 2\) -> txt/kernel \(6, 3\)"):
    ckpt_lib.load_params(saved_workdir, wrong_shape)
  renamed = {"vision": _params(0)["img"], "txt": _params(0)["txt"]}
  with pytest.raises(ckpt_lib.CheckpointError, match="img/Dense_0/bias -> img/Dense_0/bias"):
    ckpt_lib.load_params(saved_workdir, renamed)
  with pytest.raises(ckpt_lib.CheckpointError, match="no complete checkpoint"):
    ckpt_lib.load_params(os.path.dirname(saved_workdir), _params(0))
