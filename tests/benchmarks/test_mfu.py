"""Tests for vidistill/benchmarks/mfu.py: the short mode runs and its FLOP counts agree with XLA."""
import math

import jax
import pytest

from vidistill.benchmarks import flops
from vidistill.benchmarks import mfu
from vidistill.models import build


def test_model_flops_counted_on_abstract_shapes():
  s = mfu.SIZES["short"]
  batch = mfu.example_batch("vlm", s)
  assert batch["video"].shape == (s["batch"], s["frames"], s["res"], s["res"], 3)
  model = build.build(mfu.vlm_config(s), vocab_size=s["vocab"])
  params = jax.eval_shape(lambda b: mfu.init_params(model, b), batch)
  forward = flops.count(lambda p, b: model.loss_fn(p, b, jax.random.key(0))[0], params, batch)
  # Lower bound, by hand: the vocabulary projection alone, [B * Lt, emb] @ [emb, vocab].
  t5 = model.module.t5_config
  assert forward > 2 * s["batch"] * s["target"] * t5.emb_dim * s["vocab"]


@pytest.mark.slow  # Compiles two train steps: ~20 s on an idle 2-core CPU, minutes when shared.


def test_short_mode_ratios_are_sane():
  result = mfu.run(full=False)
  for kind in ("vlm", "dual_encoder"):
    m = result.details[kind]
    assert math.isfinite(m["loss"]) and m["seconds"] > 0
    # 3 x forward vs the step's own matmuls counted from its jaxpr (forward + backward): the
    # backward of a frozen-free model has two matmuls per forward one, except for the input side
    # (no gradient for the pixels / token ids), so the step holds slightly fewer.
    assert 0.8 < m["step_matmul_flops"] / m["model_flops"] <= 1.0
  by_measure = {f.measure: f for f in result.figures}
  for label in ("VLM", "dual encoder"):
    mfu_ratio = by_measure[f"{label} train step model FLOP/s"].ratio
    assert 0 < mfu_ratio < 2  # A tiny model is far below the matmul peak, never far above.
    # XLA counts the same matmuls plus elementwise work (softmax, norms, Adam).
    assert 1.0 <= by_measure[f"{label} step FLOPs, XLA cost analysis"].ratio < 2.0
