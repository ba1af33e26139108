"""Contrastive losses on embeddings: softmax (CLIP InfoNCE) and sigmoid (SigLIP), naive and chunked.

All functions take L2-normalised embeddings `zimg`, `ztxt` `[b, D]` (row i of each is a positive
pair), a logit scale `temperature` (already exponentiated: logits = temperature * zimg . ztxt)
and, for sigmoid, a logit `bias`; they return the scalar loss of the GLOBAL batch.

* `axis_name=None`: plain single-device functions on the whole batch.
* Inside `jax.shard_map` over the batch mesh axes (`axis_name` = those axes), each device holds
  its `b = B / n` rows:
  - `*_naive` all-gathers the other side's embeddings and builds a `[b, B]` logit slab per device.
  - `*_chunked` never materialises more than a `[b, b]` block: text embeddings travel round the
    ring of devices with `lax.ppermute` (SigLIP paper, Sec. 3.3 "efficient chunked
    implementation"). Softmax keeps a running logsumexp per row (local images) and per column (the
    travelling text chunk carries its own). A custom VJP re-runs the ring in the backward pass, so
    activation memory grows with the local batch only (autodiff would keep every visited chunk).
`sharded(loss_fn, mesh)` wraps either version in the shard_map over ('data', 'fsdp').
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

Array = jax.Array
AxisName = str | tuple[str, ...] | None


def _axis_size(axis_name: AxisName) -> int:
  return 1 if axis_name is None else lax.axis_size(axis_name)


def _axis_index(axis_name: AxisName) -> Array:
  return jnp.int32(0) if axis_name is None else lax.axis_index(axis_name)


def _gather(x: Array, axis_name: AxisName) -> Array:
  return x if axis_name is None else lax.all_gather(x, axis_name, tiled=True)


def _psum(x: Array, axis_name: AxisName) -> Array:
  return x if axis_name is None else lax.psum(x, axis_name)


def _labels(rows: int, cols: int, row_offset: Array) -> Array:
  """+1 where global row index == column index, else -1: `[rows, cols]` float32."""
  pos = (row_offset + jnp.arange(rows))[:, None] == jnp.arange(cols)[None, :]
  return jnp.where(pos, 1.0, -1.0)


def sigmoid_loss_naive(zimg: Array, ztxt: Array, temperature: Array, bias: Array, *,
                       axis_name: AxisName = None) -> Array:
  """SigLIP loss: -(1/B) sum_ij log sigmoid(z_ij (t x_i.y_j + b)), z = +1 on pairs, -1 otherwise."""
  b = zimg.shape[0]
  txt = _gather(ztxt, axis_name)  # [B, D]
  logits = temperature * (zimg @ txt.T) + bias  # [b, B]
  labels = _labels(b, txt.shape[0], _axis_index(axis_name) * b)
  local = -jnp.sum(jax.nn.log_sigmoid(labels * logits))
  return _psum(local, axis_name) / txt.shape[0]


def softmax_loss_naive(zimg: Array, ztxt: Array, temperature: Array, *,
                       axis_name: AxisName = None) -> Array:
  """Symmetric InfoNCE (CLIP): mean of image->text and text->image cross-entropies."""
  img_all, txt_all = _gather(zimg, axis_name), _gather(ztxt, axis_name)
  rows = temperature * (zimg @ txt_all.T)  # [b, B]: local images against all texts
  cols = temperature * (ztxt @ img_all.T)  # [b, B]: local texts against all images
  pos = temperature * jnp.sum(zimg * ztxt, axis=-1)
  local = (jnp.sum(jax.nn.logsumexp(rows, axis=1)) + jnp.sum(jax.nn.logsumexp(cols, axis=1))
           - 2 * jnp.sum(pos))
  return _psum(local, axis_name) / (2 * img_all.shape[0])


# ---------------------------------------------------------------------------------------------
# Chunked (ring) versions. Device d starts with its own text chunk; after k ppermute steps it
# holds the chunk of device (d - k) mod n. n steps bring a chunk (and whatever travels with it)
# back home.


def _ring(axis_name: AxisName, n: int) -> Callable[[Array], Array]:
  if axis_name is None or n == 1:
    return lambda x: x
  perm = [(i, (i + 1) % n) for i in range(n)]
  return lambda tree: jax.tree.map(lambda x: lax.ppermute(x, axis_name, perm), tree)


def _varying_axes(x: Array) -> frozenset:
  aval = jax.typeof(x)
  mat = getattr(aval, "manual_axis_type", None)  # jax >= 0.10; earlier releases call it `vma`
  return mat.varying if mat is not None else getattr(aval, "vma", frozenset())


def _varying(x: Array, axis_name: AxisName) -> Array:
  """Marks a replicated value as per-device, so its cotangent (a per-device partial sum) is
  summed over devices by the transpose of this cast, as autodiff does for implicit broadcasts."""
  if axis_name is None:
    return x
  names = (axis_name,) if isinstance(axis_name, str) else tuple(axis_name)
  missing = tuple(a for a in names if a not in _varying_axes(x))
  return lax.pcast(x, missing, to="varying") if missing else x


def _sigmoid_block(x, y, t, b, first):
  logits = t * (x @ y.T) + b
  labels = jnp.where(first, 2.0 * jnp.eye(x.shape[0], y.shape[0]) - 1.0, -1.0)
  return logits, labels


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _sigmoid_ring(x, y, t, b, axis_name):
  return _sigmoid_ring_fwd(x, y, t, b, axis_name)[0]


def _sigmoid_ring_fwd(x, y, t, b, axis_name):
  n = _axis_size(axis_name)
  step = _ring(axis_name, n)

  def body(carry, k):
    y_cur, total = carry
    logits, labels = _sigmoid_block(x, y_cur, t, b, k == 0)
    total = total - jnp.sum(jax.nn.log_sigmoid(labels * logits))
    return (step(y_cur), total), None

  zero = _varying(jnp.zeros((), x.dtype), axis_name)
  (_, total), _ = lax.scan(body, (y, zero), jnp.arange(n))
  return total, (x, y, t, b)


def _sigmoid_ring_bwd(axis_name, res, g):
  x, y, t, b = res
  n = _axis_size(axis_name)
  step = _ring(axis_name, n)

  def body(carry, k):
    y_cur, dy_cur, dx, dt, db = carry
    logits, labels = _sigmoid_block(x, y_cur, t, b, k == 0)
    # d/dz of -log sigmoid(l z) = -l sigmoid(-l z)
    dz = -g * labels * jax.nn.sigmoid(-labels * logits)
    dx = dx + t * (dz @ y_cur)
    dy_cur = dy_cur + t * (dz.T @ x)
    dt = dt + jnp.sum(dz * (x @ y_cur.T))
    db = db + jnp.sum(dz)
    y_cur, dy_cur = step((y_cur, dy_cur))
    return (y_cur, dy_cur, dx, dt, db), None

  v = functools.partial(_varying, axis_name=axis_name)
  init = (y, v(jnp.zeros_like(y)), v(jnp.zeros_like(x)), v(jnp.zeros_like(t)), v(jnp.zeros_like(b)))
  (_, dy, dx, dt, db), _ = lax.scan(body, init, jnp.arange(n))
  return dx, dy, dt, db


_sigmoid_ring.defvjp(_sigmoid_ring_fwd, _sigmoid_ring_bwd)


def sigmoid_loss_chunked(zimg: Array, ztxt: Array, temperature: Array, bias: Array, *,
                         axis_name: AxisName = None) -> Array:
  """Same value and gradients as `sigmoid_loss_naive`, with `[b, b]` blocks round the ring."""
  n = _axis_size(axis_name)
  t = _varying(jnp.asarray(temperature, zimg.dtype), axis_name)
  b = _varying(jnp.asarray(bias, zimg.dtype), axis_name)
  local = _sigmoid_ring(zimg, ztxt, t, b, axis_name)
  return _psum(local, axis_name) / (n * zimg.shape[0])


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _softmax_ring(x, y, t, axis_name):
  return _softmax_ring_fwd(x, y, t, axis_name)[0]


def _softmax_ring_fwd(x, y, t, axis_name):
  n = _axis_size(axis_name)
  step = _ring(axis_name, n)
  neg_inf = _varying(jnp.full((x.shape[0],), -jnp.inf, x.dtype), axis_name)

  def body(carry, _):
    y_cur, col_lse, row_lse = carry
    s = t * (x @ y_cur.T)  # [local images, chunk texts]
    row_lse = jnp.logaddexp(row_lse, jax.nn.logsumexp(s, axis=1))
    col_lse = jnp.logaddexp(col_lse, jax.nn.logsumexp(s, axis=0))
    y_cur, col_lse = step((y_cur, col_lse))  # a chunk's column statistics travel with it
    return (y_cur, col_lse, row_lse), None

  (_, col_lse, row_lse), _ = lax.scan(body, (y, neg_inf, neg_inf), None, length=n)
  pos = t * jnp.sum(x * y, axis=-1)
  total = jnp.sum(row_lse) + jnp.sum(col_lse) - 2 * jnp.sum(pos)
  return total, (x, y, t, row_lse, col_lse)


def _softmax_ring_bwd(axis_name, res, g):
  x, y, t, row_lse, col_lse = res
  n = _axis_size(axis_name)
  step = _ring(axis_name, n)

  def body(carry, _):
    y_cur, c_cur, dy_cur, dx, dt = carry
    dots = x @ y_cur.T
    s = t * dots
    dz = g * (jnp.exp(s - row_lse[:, None]) + jnp.exp(s - c_cur[None, :]))
    dx = dx + t * (dz @ y_cur)
    dy_cur = dy_cur + t * (dz.T @ x)
    dt = dt + jnp.sum(dz * dots)
    y_cur, c_cur, dy_cur = step((y_cur, c_cur, dy_cur))
    return (y_cur, c_cur, dy_cur, dx, dt), None

  v = functools.partial(_varying, axis_name=axis_name)
  init = (y, col_lse, v(jnp.zeros_like(y)), v(jnp.zeros_like(x)), v(jnp.zeros_like(t)))
  (_, _, dy, dx, dt), _ = lax.scan(body, init, None, length=n)
  # The positive-pair term -2 t x_i.y_i is local to each device.
  dx = dx - 2 * g * t * y
  dy = dy - 2 * g * t * x
  dt = dt - 2 * g * jnp.sum(x * y)
  return dx, dy, dt


_softmax_ring.defvjp(_softmax_ring_fwd, _softmax_ring_bwd)


def softmax_loss_chunked(zimg: Array, ztxt: Array, temperature: Array, *,
                         axis_name: AxisName = None) -> Array:
  """Same value and gradients as `softmax_loss_naive`, with `[b, b]` blocks round the ring."""
  n = _axis_size(axis_name)
  t = _varying(jnp.asarray(temperature, zimg.dtype), axis_name)
  local = _softmax_ring(zimg, ztxt, t, axis_name)
  return _psum(local, axis_name) / (2 * n * zimg.shape[0])


def sharded(loss_fn: Callable[..., Array], mesh: Mesh,
            batch_axes: Sequence[str] = ("data", "fsdp")) -> Callable[..., Array]:
  """`loss_fn(zimg, ztxt, *scalars, axis_name=...)` under shard_map over the batch mesh axes.

  Returns `f(zimg [B, D], ztxt [B, D], *scalars) -> loss` callable inside or outside jit, with the
  embeddings split over `batch_axes` (those present in the mesh) and scalars replicated.
  """
  axes = tuple(a for a in batch_axes if a in mesh.axis_names)

  def f(zimg, ztxt, *scalars):
    inner = functools.partial(loss_fn, axis_name=axes)
    specs = (P(axes), P(axes)) + (P(),) * len(scalars)
    return jax.shard_map(inner, mesh=mesh, in_specs=specs, out_specs=P())(zimg, ztxt, *scalars)

  return f
