"""Tests for vidistill/parallel/mesh.py on the 8 fake CPU devices (tests/conftest.py)."""
import jax
import pytest

from vidistill.parallel import mesh as mesh_lib


def test_minus_one_takes_the_remaining_devices():
  assert mesh_lib.resolve_mesh_shape({"data": -1, "fsdp": 2, "model": 1}, 8) == {
      "data": 4, "fsdp": 2, "model": 1}


@pytest.mark.parametrize("shape, match", [
    ({"data": -1, "fsdp": 3, "model": 1}, "does not divide the 8 devices"),
    ({"data": 2, "fsdp": 2, "model": 1}, "has 4 devices but 8"),
    ({"data": -1, "fsdp": -1}, "at most one axis"),
    ({"data": 0}, "sizes are positive"),
])
def test_bad_shapes_name_the_problem(shape, match):
  with pytest.raises(mesh_lib.MeshError, match=match):
    mesh_lib.make_mesh(shape)


def test_make_mesh_axes_and_types():
  mesh = mesh_lib.make_mesh({"data": -1, "fsdp": 2, "model": 2})
  assert mesh.axis_names == ("data", "fsdp", "model")
  assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "model": 2}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)
  assert sorted(d.id for d in mesh.devices.flat) == sorted(d.id for d in jax.devices())


def test_default_mesh_is_all_data():
  mesh = mesh_lib.make_mesh()
  assert dict(mesh.shape) == {"data": 8, "fsdp": 1, "model": 1}


def test_explicit_devices_keep_their_order():
  devices = jax.devices()[:4][::-1]
  mesh = mesh_lib.make_mesh({"data": 2, "model": 2}, devices=devices)
  assert [d.id for d in mesh.devices.flat] == [d.id for d in devices]
