"""Learning-rate schedules against a plain-Python reference of each formula."""
import math

import numpy as np
import pytest

from vidistill.config_args import ConfigError
from vidistill.train import schedules

TOTAL, LR = 100, 0.5


def _reference(kind, step, warmup, end, timescale):
  progress = min(max((step - warmup) / (TOTAL - warmup), 0.0), 1.0)
  if kind == "cosine":
    factor = end + (1 - end) * (1 + math.cos(math.pi * progress)) / 2
  elif kind == "linear":
    factor = 1 - (1 - end) * progress
  elif kind == "rsqrt":
    factor = 1 / math.sqrt(1 + max(step - warmup, 0) / timescale)
  else:
    factor = 1.0
  if warmup and step < warmup:
    factor *= step / warmup
  return LR * factor


@pytest.mark.parametrize("kind", schedules.KINDS)
@pytest.mark.parametrize("warmup,end", [(0, 0.0), (10, 0.1)])
def test_matches_reference(kind, warmup, end):
  fn = schedules.make_schedule({"kind": kind, "warmup_steps": warmup, "end_factor": end,
                                "timescale": 7}, base_lr=LR, total_steps=TOTAL)
  steps = np.arange(0, TOTAL + 20)
  got = np.asarray([float(fn(s)) for s in steps[::7]] + [float(fn(TOTAL + 19))])
  want = np.asarray([_reference(kind, s, warmup, end, 7) for s in steps[::7]] +
                    [_reference(kind, TOTAL + 19, warmup, end, 7)])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # float32 cos.


def test_endpoints():
  fn = schedules.make_schedule({"kind": "cosine", "warmup_steps": 10, "end_factor": 0.2},
                               base_lr=LR, total_steps=TOTAL)
  assert float(fn(0)) == 0.0
  assert float(fn(10)) == pytest.approx(LR)
  assert float(fn(TOTAL)) == pytest.approx(0.2 * LR)


def test_jittable_with_traced_step():
  import jax
  fn = schedules.make_schedule({"kind": "linear", "warmup_steps": 0}, base_lr=LR,
                               total_steps=TOTAL)
  assert float(jax.jit(fn)(50)) == pytest.approx(LR / 2)


@pytest.mark.parametrize("bad,match", [({"kind": "exp"}, "schedule.kind"),
                                       ({"warmup_steps": 101}, "warmup_steps"),
                                       ({"end_factor": 2.0}, "end_factor")])
def test_bad_values_name_the_key(bad, match):
  with pytest.raises(ConfigError, match=match):
    schedules.make_schedule({"kind": "cosine", **bad}, base_lr=LR, total_steps=TOTAL)
