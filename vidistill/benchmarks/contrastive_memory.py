"""Peak memory per device of the chunked contrastive losses against the naive all-gather loss.

Loss + gradients of `sharded(*_loss_chunked)` and `sharded(*_loss_naive)` (vidistill/models/
contrastive.py) over 8 CPU devices, global batch B: the compiled program's temp buffer size per
device (`memory_analysis()`, exact for the compiled program, no run needed), and the loss values
of both on the same random embeddings. Naive builds a `[B/n, B]` logit slab per device (grows with
the global batch); chunked holds `[B/n, B/n]` blocks (grows with the local batch only).

Needs 8 devices: when this process has fewer (the CLI's single CPU device), it runs itself in a
subprocess with `--xla_force_host_platform_device_count=8`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np

from vidistill.benchmarks import report

DEVICES = 8
SIZES = {"short": dict(batches=(128, 512), dim=32, local=(16, 64)),
         "full": dict(batches=(1024, 2048, 4096, 8192), dim=256, local=(512, 1024))}
LOSSES = ("sigmoid", "softmax")


def _loss_fns(kind: str):
  from vidistill.models import contrastive  # pylint: disable=g-import-not-at-top
  if kind == "sigmoid":
    return contrastive.sigmoid_loss_naive, contrastive.sigmoid_loss_chunked, (10.0, -10.0)
  return contrastive.softmax_loss_naive, contrastive.softmax_loss_chunked, (10.0,)


def measure(kind: str, batch: int, dim: int, devices: int) -> dict[str, float]:
  """{naive,chunked}_{temp_bytes,loss} for global `batch` on the first `devices` devices."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax.sharding import Mesh, NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from vidistill.models import contrastive  # pylint: disable=g-import-not-at-top
  mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
  shard = NamedSharding(mesh, P("data"))
  rng = np.random.default_rng(batch)
  z = rng.standard_normal((2, batch, dim)).astype(np.float32)
  z /= np.linalg.norm(z, axis=-1, keepdims=True)
  zimg, ztxt = (jax.device_put(x, shard) for x in z)
  naive, chunked, scalars = _loss_fns(kind)
  out = {}
  for name, fn in (("naive", naive), ("chunked", chunked)):
    loss = contrastive.sharded(fn, mesh)
    step = jax.jit(jax.value_and_grad(lambda a, b: loss(a, b, *map(jnp.float32, scalars)),
                                      argnums=(0, 1)))
    compiled = step.lower(zimg, ztxt).compile()
    out[f"{name}_temp_bytes"] = float(compiled.memory_analysis().temp_size_in_bytes)
    value, grads = compiled(zimg, ztxt)
    out[f"{name}_loss"] = float(value)
    out[f"{name}_grad_finite"] = float(all(np.isfinite(np.asarray(g)).all() for g in grads))
  return out


def measure_all(full: bool) -> dict[str, Any]:
  s = SIZES["full" if full else "short"]
  out = {"global": {}, "local": {}}
  for kind in LOSSES:
    for batch in s["batches"]:
      out["global"][f"{kind}_{batch}"] = measure(kind, batch, s["dim"], DEVICES)
    for local in s["local"]:
      for n in (2, DEVICES):
        out["local"][f"{kind}_{local}_{n}"] = measure(kind, local * n, s["dim"], n)
  return out


def _measure_in_subprocess(full: bool) -> dict[str, Any]:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
                       f"--xla_force_host_platform_device_count={DEVICES}".strip())
  cmd = [sys.executable, "-m", "vidistill.benchmarks.contrastive_memory"] + (["--full"] if full
                                                                               else [])
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f"contrastive memory subprocess failed ({proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def run(full: bool = False) -> report.Result:
  import jax  # pylint: disable=g-import-not-at-top
  s = SIZES["full" if full else "short"]
  data = measure_all(full) if jax.device_count() >= DEVICES else _measure_in_subprocess(full)
  figures = []
  largest = s["batches"][-1]
  for kind in LOSSES:
    for batch in s["batches"]:
      m = data["global"][f"{kind}_{batch}"]
      goal = 4.0 if (full and batch == largest) else None
      figures.append(report.Figure(
          "contrastive", f"{kind} naive temp/device, B={batch} on {DEVICES}",
          m["naive_temp_bytes"], "chunked", m["chunked_temp_bytes"], unit="B", goal=goal,
          note=f"D={s['dim']}, loss + grads"))
      figures.append(report.Figure(
          "contrastive", f"{kind} chunked loss, B={batch}", m["chunked_loss"], "naive loss",
          m["naive_loss"], goal=None, note="same value expected: ratio 1"))
    for local in s["local"]:
      two, many = (data["local"][f"{kind}_{local}_{n}"] for n in (2, DEVICES))
      figures.append(report.Figure(
          "contrastive", f"{kind} chunked temp/device, local {local}, {DEVICES} devices",
          many["chunked_temp_bytes"], "2 devices", two["chunked_temp_bytes"], unit="B",
          goal=1.25 if full else None, lower_is_better=True,
          note=f"naive grows x{many['naive_temp_bytes'] / two['naive_temp_bytes']:.2f}"))
  return report.Result("contrastive_memory", figures, {"sizes": s, **data})


if __name__ == "__main__":
  print(json.dumps(measure_all("--full" in sys.argv)))
