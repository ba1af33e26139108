"""Ahead-of-time compilation for a TPU topology (v5e:2x2) on this CPU host, through libtpu.

libtpu comes with the `tpu` extra, which the README's test command installs: without it the
compiling tests fail (they are not skipped), so a missing extra in CI shows.
"""
import importlib.util
import math

import jax
import jax.numpy as jnp
import pytest

from vidistill import config_args
from vidistill.benchmarks import flops
from vidistill.models import build as build_lib
from vidistill.train import compile_topology as ct
from vidistill.train import optim as optim_lib
from vidistill.train import restore, schedules, step as step_lib

CONFIGS = "configs/train/{}.py:tiny"
# TPU layouts pad an array's two minor dimensions to (8, 128) tiles: a tiny model's small
# kernels take up to this much more than their element count says.
TILE_SLACK = 1.3


@pytest.fixture
def _needs_libtpu():
  if importlib.util.find_spec("libtpu") is None:
    pytest.fail("libtpu is not installed: pip install -e '.[test,tpu]' (the README's command)")


def _bytes(tree):
  return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _independent(config, batch_size):
  """Parameters, optimizer state and batch from eval_shape alone (no mesh, no shardings)."""
  model = build_lib.build(config.model, vocab_size=32_128, dtype=config.dtype)
  example = restore.example_batch(config, int(config.data.num_frames),
                                  int(config.data.resolution))
  params = step_lib.to_float32(jax.tree.map(
      lambda x: getattr(x, "value", x), jax.eval_shape(model.init, jax.random.key(0), example),
      is_leaf=lambda x: hasattr(x, "value"))["params"])
  schedule = schedules.make_schedule(config.schedule, base_lr=1.0, total_steps=4)
  tx, _ = optim_lib.make_optimizer(config.optim, schedule, params, list(config.frozen or ()))
  batch = {k: jax.ShapeDtypeStruct((batch_size,) + v.shape[1:], v.dtype) for k, v in
           example.items()}
  return model, params, jax.eval_shape(tx.init, params), batch


@pytest.mark.slow
@pytest.mark.usefixtures("_needs_libtpu")
@pytest.mark.parametrize("stage, mesh", [("visual_adaptation", {"data": -1, "fsdp": 1}),
                                         ("dual_encoder", {"data": 2, "fsdp": 2})])
def test_train_step_compiles_for_v5e_2x2(stage, mesh, tmp_path):
  config = config_args.load_config(CONFIGS.format(stage))
  config.mesh = mesh
  config.data.num_frames, config.data.resolution = 4, 32
  [stats] = ct.compile_stage(config, "v5e:2x2")
  assert stats.devices == 4 and stats.chip == "v5e" and stats.hbm_bytes == 16 * 2**30
  model, param_tree, opt_tree, global_batch = _independent(config, int(config.batch_size))
  params, opt, batch = _bytes(param_tree), _bytes(opt_tree), _bytes(global_batch)
  shards = mesh.get("fsdp", 1)
  # Our per-device accounting, from the shardings: parameters split over fsdp at most.
  assert params / shards <= stats.parts["parameters"] <= params
  assert stats.parts["batch"] == batch // 4
  # XLA's memory analysis: the arguments are the state and the batch, nothing else; the donated
  # state is aliased to the output.
  ours = stats.parts["parameters"] + stats.parts["optimizer state"] + stats.parts["batch"]
  assert ours <= stats.argument_bytes <= TILE_SLACK * ours + 4096
  assert stats.alias_bytes >= 0.99 * (stats.parts["parameters"] + stats.parts["optimizer state"])
  if shards == 1:
    assert stats.parts["parameters"] == params and stats.parts["optimizer state"] == opt
  # FLOPs: XLA's count over all devices covers the jaxpr's matmuls plus the elementwise work
  # (norms, activations, softmax, the optimizer), a large share at these tiny widths (1.1x for
  # the VLM, 1.9x for the 16-wide dual encoder, measured).
  assert 1.0 <= stats.xla_flops * stats.devices / stats.program_flops <= 2.5
  # The training forward (train=True, as the update step runs it: dropout and the like).
  forward = flops.count(lambda p, b: model.loss_fn(p, b, jax.random.PRNGKey(0), train=True)[0],
                        param_tree, global_batch)
  # Model FLOPs are the gradient's, nothing recomputed (the tiny configs rematerialise nothing,
  # so the update step's own jaxpr holds the same matmuls: the optimizer has none). The stage
  # traces under the mesh's axis rules, this count without a mesh: they differ in the
  # contrastive loss by a few hundred FLOPs (1.8e-5 relative for the dual encoder).
  assert stats.model_flops == pytest.approx(stats.program_flops, rel=1e-4)
  if config.frozen:
    # Visual adaptation: backward through the frozen LM to the ViT, but no LM weight gradients.
    assert 2 * forward < stats.model_flops < 2.95 * forward
  else:
    # Everything trained: backward ~ 2x forward, less the pixels' gradient through the patch
    # embedding, never needed (5% of the tiny dual encoder's forward: 2.85x, measured).
    assert 2.75 * forward <= stats.model_flops <= 3 * forward * (1 + 1e-4)
  assert stats.seconds > 0 and stats.schedule_days == pytest.approx(
      stats.calls * stats.seconds / 86400)
  path = ct.write_json([stats], str(tmp_path), "v5e:2x2")
  assert path.endswith("compile_v5e_2x2.json")


def test_a_program_that_does_not_fit_names_what_dominates():
  gib = 2**30
  stats = ct.ProgramStats(
      program="train step", topology="v5e:2x2", chip="v5e", devices=4, mesh={"data": 4},
      compile_seconds=1.0, argument_bytes=14 * gib, output_bytes=0, alias_bytes=0,
      temp_bytes=3 * gib, code_bytes=0,
      parts={"parameters": 4 * gib, "optimizer state": 9 * gib, "batch": gib},
      xla_flops=1e12, model_flops=3e12, program_flops=4e12, xla_seconds=-2.0,
      xla_bytes_accessed=1e9, hbm_bytes=16 * gib, peak_flops=197e12, hbm_bandwidth=819e9,
      calls=10)
  assert stats.peak_bytes == 17 * gib and stats.dominant() == ("optimizer state", 9 * gib)
  assert stats.seconds == max(4e12 / (4 * 197e12), 1e9 / 819e9)  # XLA's -2: not priced
  with pytest.raises(ct.DoesNotFitError, match=r"train step needs 17.00 GiB .* mostly "
                     r"optimizer state \(9.00 GiB\)"):
    ct.check_fits([stats])
  stats.hbm_bytes = 32 * gib
  ct.check_fits([stats])


@pytest.mark.slow
@pytest.mark.usefixtures("_needs_libtpu")
def test_unknown_topology_is_a_usage_error():
  with pytest.raises(ct.TopologyError, match="names look like"):
    ct.topology("v5e:banana")


def test_without_libtpu_the_error_says_how_to_get_it(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "libtpu" else real(name, *a))
  with pytest.raises(ct.TopologyError, match=r"needs libtpu.*pip install -e '\.\[tpu\]'"):
    ct.topology("v5e:16x16")


@pytest.mark.slow
@pytest.mark.usefixtures("_needs_libtpu")
@pytest.mark.parametrize("lm", ["t5", "paligemma"])
def test_caption_decode_compiles_at_the_stage_shapes(lm):
  # The caption config leaves frames and resolution at 0 ("the checkpoint's"): the decode is
  # compiled at the shapes the stage trains at, for either language model.
  config = config_args.load_config(f"configs/train/visual_adaptation.py:tiny,lm={lm}")
  caption = config_args.load_config("configs/caption/pseudo_caption.py:tiny")
  assert int(caption.resolution) == 0 and int(caption.num_frames) == 0
  stats = ct.compile_stage(config, "v5e:2x2", caption_config=caption)
  assert [s.program for s in stats] == ["visual_adaptation train step", "caption encode + cache",
                                        "caption decode step"]
  frames, res = int(config.data.num_frames), int(config.data.resolution)
  assert f"{frames} frames of {res} px" in stats[1].note
  # uint8 clips of the stage's shape, the batch split over the 4 devices (padded to them).
  rows = -(-int(caption.batch_size) // 4) * 4
  assert stats[1].parts["batch"] >= rows * frames * res * res * 3 // 4
  assert all(s.peak_bytes < s.hbm_bytes for s in stats)


@pytest.mark.slow
def test_model_flops_do_not_count_rematerialisation():
  # The paper's layout (scanned, every layer rematerialised) on the tiny VLM: the update step
  # recomputes each layer's forward in the backward, model FLOPs count it once.
  config = config_args.load_config(CONFIGS.format("image_pretrain"))
  for stack in (config.model.vit, config.model.t5):
    stack.remat_policy = "full"
  config.model.vit.scan = config.model.t5.scan_layers = True
  model, params, _, batch = _independent(config, 2)
  frozen = jax.tree.map(lambda _: False, params)
  rng = jax.ShapeDtypeStruct((2,), jnp.uint32)
  plain = ct._without_remat(config, None, 32_128)  # pylint: disable=protected-access
  counted = flops.count(ct._gradient(plain, frozen, jnp.float32), params, batch, rng)  # pylint: disable=protected-access
  recomputed = flops.count(ct._gradient(model, frozen, jnp.float32), params, batch, rng)  # pylint: disable=protected-access
  forward = flops.count(lambda p, b: model.loss_fn(p, b, jax.random.PRNGKey(0), train=True)[0],
                        params, batch)
  assert counted < recomputed < counted + forward
  assert 2.75 * forward <= counted <= 3 * forward
