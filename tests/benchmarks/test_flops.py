"""Tests for vidistill/benchmarks/flops.py against hand-counted FLOPs and XLA's cost analysis."""
import jax
import jax.numpy as jnp
import numpy as np

from vidistill.benchmarks import flops


def test_dot_general_batched_and_transposed():
  a, b = jnp.ones((3, 5, 7)), jnp.ones((3, 11, 7))
  f = lambda a, b: jnp.einsum("bik,bjk->bij", a, b)
  assert flops.count(f, a, b) == 2 * 3 * 5 * 11 * 7
  assert flops.count(f, a, b) == flops.xla_flops(f, a, b)


def test_conv_matches_patch_matmul_count():
  x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((2, 2, 3, 5))
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (2, 2), "VALID",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  # Patchify as a matmul: [2*4*4 patches, 2*2*3] @ [12, 5].
  assert flops.count(conv, x, k) == 2 * (2 * 4 * 4) * 12 * 5


def test_scan_counts_length_times_and_grad_doubles_inputs():
  xs, w = jnp.ones((6, 4, 8)), jnp.ones((8, 8))
  f = lambda xs, w: jax.lax.scan(lambda c, x: (c, x @ w), 0.0, xs)[1]
  one = 2 * 4 * 8 * 8
  assert flops.count(f, xs, w) == 6 * one
  loss = lambda xs, w: jnp.sum(f(xs, w))
  # Forward + the two backward matmuls (d/dxs and d/dw).
  assert flops.count(jax.grad(loss, argnums=(0, 1)), xs, w) == 3 * 6 * one


def test_abstract_inputs_need_no_arrays():
  a = jax.ShapeDtypeStruct((1024, 4096), jnp.bfloat16)
  b = jax.ShapeDtypeStruct((4096, 512), jnp.bfloat16)
  assert flops.count(jnp.dot, a, b) == np.float64(2) * 1024 * 4096 * 512
