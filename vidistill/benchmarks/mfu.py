"""Model FLOPs utilisation of the VLM and dual-encoder train steps against this machine's peak.

    MFU = model FLOPs per step / step time / matmul peak (peak.py, same dtype, same run)

Model FLOPs = 3 x the forward's matmul FLOPs (flops.py counts them from the model's jaxpr;
backward ~ 2 x forward), cross-checked against XLA's cost analysis of the compiled step. The step
is the trainer's own (vidistill/train/step.py: frozen mask, NaN guard, AdamW), jitted with the
state donated, as the trainer runs it.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidistill.benchmarks import flops as flops_lib
from vidistill.benchmarks import peak as peak_lib
from vidistill.benchmarks import report
from vidistill.benchmarks import timing
from vidistill.models import build
from vidistill.parallel import partitioning
from vidistill.train import model_api
from vidistill.train import state as state_lib
from vidistill.train import step as step_lib

# Sizes: "short" runs in seconds (CI); "full" has matmuls big enough for the CPU's vector units
# (ViT-S rows of 512-1024 tokens x width 384, T5-small width 512): the config the 50% goal is for.
SIZES = {
    "short": dict(vit="mu/8", t5="tiny", de_vit="mu/8", de_text="mu", embed=16, frames=2, res=32,
                  batch=2, vocab=128, prompt=8, target=8, spatial_tokens=4),
    "full": dict(vit="S/8", t5="t5_1_1_small", de_vit="S/8", de_text="S", embed=384, frames=2,
                 res=64, batch=4, vocab=4096, prompt=16, target=32, spatial_tokens=16),
}


def vlm_config(s: dict[str, Any]) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      kind="vlm", vit=dict(variant=s["vit"], pool_type="none"),
      video=dict(max_frames=16, temporal_embedding=True, spatial_tokens=s["spatial_tokens"],
                 temporal_pool=1),
      t5=dict(variant=s["t5"]), z_loss=1e-4))


def dual_encoder_config(s: dict[str, Any]) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      kind="dual_encoder", embed_dim=s["embed"], vit=dict(variant=s["de_vit"], pool_type="gap"),
      text=dict(variant=s["de_text"], max_len=64, pool_type="last"), temporal_type="mean",
      loss="sigmoid", temperature_init=2.302585, bias_init=-10.0))


def example_batch(kind: str, s: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
  """A random batch of the stage's shapes: video `[B, T, H, W, 3] uint8`, tokens `[B, L] int32`."""
  rng = np.random.default_rng(seed)
  b = s["batch"]
  video = rng.integers(0, 256, (b, s["frames"], s["res"], s["res"], 3), dtype=np.uint8)
  tokens = lambda n: rng.integers(2, s["vocab"], (b, n), dtype=np.int32)
  if kind == "vlm":
    return {"video": video, "prompt_tokens": tokens(s["prompt"]),
            "target_tokens": tokens(s["target"])}
  return {"video": video, "text_tokens": tokens(s["target"])}


def init_params(model: Any, batch: Any, seed: int = 0) -> Any:
  """Unboxed float32 params. The "rbg" key: threefry's unrolled random bits for every parameter
  take XLA:CPU tens of seconds to compile, rbg a fraction; the values do not matter here."""
  key = jax.random.key(seed, impl="rbg")
  return partitioning.unbox(jax.jit(model.init)(key, batch))["params"]


def train_step_benchmark(kind: str, s: dict[str, Any], *, repeats: int) -> dict[str, float]:
  """Seconds per train step and its FLOPs (model count and XLA's) for one model kind."""
  config = vlm_config(s) if kind == "vlm" else dual_encoder_config(s)
  model = build.build(config, vocab_size=s["vocab"], dtype="float32")
  batch = jax.tree.map(jnp.asarray, example_batch(kind, s))
  params = init_params(model, batch)
  tx = optax.adamw(1e-4, weight_decay=1e-4)
  frozen = jax.tree.map(lambda _: False, params)
  step_fn = step_lib.make_train_step(model, tx, optax.constant_schedule(1e-4), frozen,
                                     accum_steps=1, compute_dtype=jnp.float32,
                                     on_nonfinite="skip")
  state = state_lib.new_state(params, tx.init(params), jax.random.key_data(jax.random.key(1)))
  forward = flops_lib.count(lambda p, b: model.loss_fn(p, b, jax.random.key(2))[0], params, batch)
  compiled = jax.jit(step_fn, donate_argnums=0).lower(state, batch).compile()
  xla = flops_lib.compiled_flops(compiled)
  counted_step = flops_lib.count(step_fn, state, batch)
  holder = [state]

  def one_step():
    holder[0], metrics = compiled(holder[0], batch)
    return metrics["loss"]

  seconds = timing.median_seconds(one_step, repeats=repeats, warmup=1)
  loss = float(one_step())
  if not np.isfinite(loss):
    raise FloatingPointError(f"{kind} train step gave a non-finite loss {loss}")
  model_flops = model_api.TRAIN_FLOPS_PER_FORWARD_FLOP * forward
  return {"seconds": seconds, "model_flops": model_flops, "step_matmul_flops": counted_step,
          "xla_flops": xla or float("nan"), "loss": loss,
          "params": float(sum(x.size for x in jax.tree.leaves(params)))}


def run(full: bool = False) -> report.Result:
  mode = "full" if full else "short"
  s = SIZES[mode]
  peaks = peak_lib.peaks(full)
  figures, details = [], {"sizes": s, "peaks": peaks}
  for kind, label in (("vlm", "VLM"), ("dual_encoder", "dual encoder")):
    m = train_step_benchmark(kind, s, repeats=3 if full else 2)
    details[kind] = m
    what = (f"ViT {s['vit']} + T5 {s['t5']}" if kind == "vlm"
            else f"ViT {s['de_vit']} + text {s['de_text']}")
    what += f", batch {s['batch']} x {s['frames']} frames {s['res']}px, float32"
    figures.append(report.Figure(
        "mfu", f"{label} train step model FLOP/s", m["model_flops"] / m["seconds"],
        "float32 matmul peak", peaks["float32"], unit="FLOP/s", goal=0.5 if full else None,
        note=what))
    figures.append(report.Figure(
        "mfu", f"{label} step FLOPs, XLA cost analysis", m["xla_flops"], "3 x forward matmuls",
        m["model_flops"], note="cross-check of the FLOP count (XLA adds elementwise work)"))
  return report.Result("mfu", figures, details)
