"""Training metrics: clu metric writers, throughput, progress/ETA lines and model FLOPs utilisation.

MFU = model FLOPs per step x steps/s / (peak FLOP/s per device x devices), with model FLOPs from
the model (`flops_per_example`, 3x forward for a training step) or from XLA's count of the
compiled step, and the peak from the config or measured once with a matmul.
"""
from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from vidistill import progress as progress_lib


class LogWriter:
  """A console-only writer with clu's MetricWriter methods (no TensorFlow import)."""

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    logging.info("[%d] %s", step, ", ".join(f"{k}={float(v):.6g}" for k, v in sorted(
        scalars.items())))

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
    for k, v in texts.items():
      logging.info("[%d] %s: %s", step, k, v)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    logging.info("hparams: %s", dict(hparams))

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def make_writer(logdir: str | None, *, tensorboard: bool = True):
  """clu's default writer (TensorBoard event files + console) on process 0, console elsewhere.

  `tensorboard=False` (or no logdir) gives the console-only `LogWriter`, which avoids importing
  TensorFlow (clu's writers need it): useful for quick runs and subprocess tests.
  """
  if not (tensorboard and logdir):
    return LogWriter()
  from clu import metric_writers  # pylint: disable=g-import-not-at-top  (pulls in TensorFlow)
  return metric_writers.create_default_writer(logdir, just_logging=jax.process_index() > 0,
                                              asynchronous=True)


def compiled_flops(compiled: Any) -> float | None:
  """Total FLOPs of one call of a compiled (jitted, lowered) function, summed over devices.

  XLA's cost analysis of an SPMD-partitioned program counts one device's share.
  """
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except  (backends without cost analysis)
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not analysis or "flops" not in analysis:
    return None
  return float(analysis["flops"]) * _num_partitions(compiled)


def _num_partitions(compiled: Any) -> int:
  devices = set()
  for sharding in jax.tree.leaves(compiled.input_shardings):
    devices.update(getattr(sharding, "device_set", ()))
  return max(len(devices), 1)


def measure_peak_flops(device: jax.Device | None = None, *, size: int | None = None,
                       repeats: int = 5) -> float:
  """FLOP/s of one device on a square matmul (bfloat16 on accelerators, float32 on CPU).

  A measured stand-in for the datasheet peak when `peak_flops_per_device` is not configured;
  a real peak is higher, so MFU against it reads high. The best of `repeats` timed calls is
  taken (a busy machine slows some calls, never speeds one up), and the figure is measured once
  per process and device: every stage of a pipeline reuses it.
  """
  device = device or jax.local_devices()[0]
  cpu = device.platform == "cpu"
  return _peak_flops(device, size or (1024 if cpu else 8192), repeats)


@functools.lru_cache(maxsize=None)
def _peak_flops(device: jax.Device, size: int, repeats: int) -> float:
  dtype = jnp.float32 if device.platform == "cpu" else jnp.bfloat16
  a = jax.device_put(jnp.ones((size, size), dtype), device)
  matmul = jax.jit(lambda x: x @ x)
  jax.block_until_ready(matmul(a))
  best = float("inf")
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a))
    best = min(best, time.perf_counter() - start)
  return 2.0 * size ** 3 / max(best, 1e-9)


class StepMeter:
  """Throughput and MFU between log points, and the ETA; time in `excluded()` is not counted."""

  def __init__(self, *, total_steps: int, start_step: int, examples_per_step: int,
               flops_per_step: float | None, peak_flops: float | None,
               clock: Callable[[], float] = time.perf_counter):
    self.total_steps = total_steps
    self.examples_per_step = examples_per_step
    self.flops_per_step = flops_per_step
    self.peak_flops = peak_flops  # All devices together.
    self.progress = progress_lib.Progress(total_steps, done=start_step, clock=clock)
    self._last_step, self._last_elapsed = start_step, 0.0
    self._tokens = 0.0

  def add_tokens(self, tokens: float) -> None:
    self._tokens += tokens

  def excluded(self) -> contextlib.AbstractContextManager[None]:
    return self.progress.excluded()

  def measure(self, step: int) -> dict[str, float]:
    """Rates since the previous `measure` (steps/s, examples/s, tokens/s, mfu) and the ETA."""
    self.progress.add(step - self.progress.done)
    elapsed_total = self.progress.elapsed
    elapsed = max(elapsed_total - self._last_elapsed, 1e-9)
    steps = step - self._last_step
    out = {"steps_per_sec": steps / elapsed,
           "examples_per_sec": steps * self.examples_per_step / elapsed,
           "tokens_per_sec": self._tokens / elapsed}
    if self.flops_per_step and self.peak_flops:
      out["mfu"] = self.flops_per_step * out["steps_per_sec"] / self.peak_flops
    out["eta_seconds"] = self.progress.eta_seconds
    self._last_step, self._last_elapsed, self._tokens = step, elapsed_total, 0.0
    return out

  def line(self, step: int, measures: Mapping[str, float], loss: float | None = None) -> str:
    """`step 120/1000 (12.0%) loss 2.31 | 4.2 steps/s 134 ex/s | MFU 31.0% | ETA 3m29s`."""
    parts = [f"step {step}/{self.total_steps} ({100.0 * step / max(self.total_steps, 1):.1f}%)"]
    if loss is not None:
      parts[0] += f" loss {loss:.4g}"
    parts.append(f"{measures['steps_per_sec']:.3g} steps/s {measures['examples_per_sec']:.3g} ex/s")
    if "mfu" in measures:
      parts.append(f"MFU {100.0 * measures['mfu']:.1f}%")
    parts.append(f"ETA {progress_lib.format_duration(measures['eta_seconds'])}")
    return " | ".join(parts)


def count_tokens(batch: Mapping[str, np.ndarray], keys: tuple[str, ...] = ("inputs", "targets"),
                 ) -> int:
  """Non-padding (non-zero) token ids in the text fields of a host batch."""
  return int(sum(np.count_nonzero(batch[k]) for k in keys if k in batch))
