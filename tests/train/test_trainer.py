"""The training loop on a toy model: logging, resume, freezing, accumulation, NaN handling, init."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest

import toy
from vidistill.config_args import ConfigError
from vidistill.parallel import partitioning
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import multistep
from vidistill.train import state as state_lib
from vidistill.train import trainer


def _run(workdir, config, model=None, source=None, **kw):
  model = model or toy.ToyModel()
  return trainer.train(config, str(workdir), model,
                       toy.toy_data(source, batch_size=config.batch_size, shuffle=False
                                    if source is not None else True), **kw)


def _killed_at_then_resumed(workdir, config, step):
  """A run preempted (KeyboardInterrupt) when its input reaches batch `step`, then rerun in the
  same workdir: the resumed run's result."""
  real = toy.toy_data(batch_size=config.batch_size)

  def dies(**kw):
    for i, batch in enumerate(real(**kw), start=kw["start_step"]):
      if i == step:
        raise KeyboardInterrupt("simulated preemption")
      yield batch

  with pytest.raises(KeyboardInterrupt):
    trainer.train(config, str(workdir), toy.ToyModel(), dies)
  return _run(workdir, config)


def _leaves_equal_bitwise(a, b):
  return all(np.array_equal(np.asarray(x).view(np.uint32), np.asarray(y).view(np.uint32))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
  """12 steps, checkpoints at 4/8/12, an eval hook every 6 steps."""
  workdir = tmp_path_factory.mktemp("stage1")
  calls = []

  def hook(step, params):
    calls.append(step)
    return {"eval/kernel_norm": jnp.linalg.norm(params["head"]["kernel"])}

  result = _run(workdir, toy.toy_config(eval_every=6), eval_hooks=[hook])
  return result, workdir, calls


def test_trains_logs_checkpoints_and_evaluates(stage1):
  result, workdir, calls = stage1
  assert result.step == 12 and result.resumed_from == "scratch"
  logged = dict((s, m) for s, m in result.history if "loss" in m)
  assert sorted(logged) == [4, 8, 12]
  assert logged[12]["loss"] < logged[4]["loss"]
  for key in ("loss", "mse", "grad_norm", "learning_rate", "steps_per_sec", "examples_per_sec",
              "tokens_per_sec", "mfu", "skipped_steps"):
    assert np.isfinite(logged[12][key]), key
  assert logged[4]["tokens_per_sec"] > 0 and 0 < logged[12]["mfu"]
  assert calls == [6, 12]
  assert any("eval/kernel_norm" in m for _, m in result.history)
  ckpts = ckpt_lib.Checkpoints(str(workdir / "checkpoints"))
  assert ckpts.all_steps() == [4, 8, 12]
  assert ckpts.read_meta(12)["data_position"] == 12
  ckpts.close()
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(result.state.params))


def test_rerun_of_a_finished_run_resumes_and_does_nothing(stage1):
  result, workdir, _ = stage1
  again = _run(workdir, toy.toy_config(eval_every=6))
  assert again.resumed_from == "workdir" and again.step == 12
  assert _leaves_equal_bitwise(again.state.params, result.state.params)


def test_interrupted_run_resumes_to_identical_params(stage1, tmp_path):
  result, _, _ = stage1
  config = toy.toy_config(eval_every=6)
  resumed = _killed_at_then_resumed(tmp_path, config, 6)
  assert resumed.resumed_from == "workdir"
  assert _leaves_equal_bitwise(resumed.state.params, result.state.params)
  assert _leaves_equal_bitwise(resumed.state.opt_state, result.state.opt_state)


def test_nan_stops_naming_the_step_and_never_overwrites_a_good_checkpoint(tmp_path):
  config = toy.toy_config(checkpoint_every=2, log_every=4)
  source = toy.ToySource(nan_index=6 * config.batch_size + 3)  # In the batch of step 7.
  with pytest.raises(trainer.NonFiniteLossError, match="NaN/Inf at step 7 "):
    _run(tmp_path, config, source=source)
  ckpts = ckpt_lib.Checkpoints(str(tmp_path / "checkpoints"))
  assert ckpts.all_steps() == [2, 4, 6]
  ckpts.close()


def test_stage_two_loads_a_mapped_subtree_freezes_it_and_shards_with_fsdp(tmp_path):
  # An "earlier stage" checkpoint, written directly: encoder weights of a known value.
  saved = {"encoder": {"kernel": np.full((toy.DIM, toy.HIDDEN), 0.5, np.float32),
                       "bias": np.full((toy.HIDDEN,), -0.0, np.float32)},
           "other_tower": {"kernel": np.ones((3, 3), np.float32)}}
  earlier = ckpt_lib.Checkpoints(str(tmp_path / "stage1" / "checkpoints"))
  earlier.save(100, state_lib.new_state(saved, {"unused": np.zeros(1)}, jax.random.PRNGKey(0)),
               {"step": 100, "data_position": 100})
  earlier.close()

  config = toy.toy_config(total_steps=4, checkpoint_every=0, frozen=("encoder/.*",),
                          mesh={"data": 4, "fsdp": 2, "model": 1},
                          **{"init.checkpoint": str(tmp_path / "stage1"), "init.strict": False,
                             "init.params_map": [("encoder/(.*)", r"encoder/\1")]})
  result = _run(tmp_path / "stage2", config)
  assert result.resumed_from == "init.checkpoint"
  assert _leaves_equal_bitwise(result.state.params["encoder"], saved["encoder"])  # Even -0.0.
  encoder_shapes = {x.shape for x in jax.tree.leaves(saved["encoder"])}
  assert not encoder_shapes & {x.shape for x in jax.tree.leaves(result.state.opt_state)}
  # The head trained from its fresh init; its kernel ("mlp", "embed") has embed on 'fsdp', and
  # its Adam moments are sharded the same way.
  kernel = result.state.params["head"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("model", "fsdp")
  mu = [x for x in jax.tree.leaves(result.state.opt_state) if x.shape == kernel.shape]
  assert len(mu) == 2 and all(m.sharding.spec == kernel.sharding.spec for m in mu)
  assert result.history[-1][1]["loss"] < result.history[0][1]["loss"] * 1.5


def test_strict_init_checkpoint_loads_every_parameter_without_running_model_init(
    tmp_path, monkeypatch, stage1):
  # Every parameter comes from the earlier stage: the model's init program (a compile of the
  # whole forward pass) is never built or run; the optimizer state starts fresh at step 0.
  first, workdir, _ = stage1
  saved = ckpt_lib.load_params(str(workdir), first.state.params)
  inits = []
  setup = trainer.abstract_setup

  def spying_setup(*args, **kwargs):
    out = setup(*args, **kwargs)
    init_state = out.init_state
    out.init_state = lambda: inits.append(1) or init_state()
    return out

  monkeypatch.setattr(trainer, "abstract_setup", spying_setup)
  config = dict(total_steps=1, checkpoint_every=0, log_every=1,
                **{"optim.lr": 0.0, "schedule.warmup_steps": 0})
  _run(tmp_path / "scratch", toy.toy_config(**config))
  assert len(inits) == 1
  result = _run(tmp_path / "loaded", toy.toy_config(**config, **{"init.checkpoint": str(workdir)}))
  assert len(inits) == 1
  assert result.resumed_from == "init.checkpoint" and result.step == 1
  assert _leaves_equal_bitwise(result.state.params, saved)  # lr 0: still the loaded values.


def test_scratch_init_is_the_models_own_init_compiled_for_one_run(tmp_path):
  # The init program is built without XLA's backend optimisations on CPU (it runs once); its
  # parameters are the model's init from the seed's init key, up to float rounding.
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
  assert trainer.one_shot_compiler_options(mesh) == {"xla_backend_optimization_level": 0}
  config = toy.toy_config(total_steps=1, checkpoint_every=0, log_every=1, seed=3,
                          **{"optim.lr": 0.0, "schedule.warmup_steps": 0})
  result = _run(tmp_path, config)
  init_rng, _ = jax.random.split(jax.random.PRNGKey(3))
  want = partitioning.unbox(
      jax.jit(toy.ToyModel().init)(init_rng, {"x": jnp.zeros((1, toy.DIM))})["params"])
  got = jax.device_get(result.state.params)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  assert np.any(want["encoder"]["kernel"])
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_import_init_and_bfloat16_compute(tmp_path):
  def import_init(params):
    return jax.tree.map(lambda x: np.full(x.shape, 0.01, np.float32), params)

  config = toy.toy_config(total_steps=1, checkpoint_every=0, dtype="bfloat16",
                          **{"optim.lr": 0.0, "schedule.warmup_steps": 0})
  result = _run(tmp_path, config, import_init=import_init)
  assert result.resumed_from == "import"
  for x in jax.tree.leaves(result.state.params):
    assert x.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(x), np.float32(0.01))  # lr 0: unchanged.
  assert np.isfinite(result.history[-1][1]["loss"])


def test_implicit_transfers_in_the_loop_fail_loudly(tmp_path, monkeypatch):
  # Simulate a bug that hands host arrays to the step: the transfer guard must refuse it.
  monkeypatch.setattr(trainer, "_global_batch", lambda local, sharding: dict(local))
  with pytest.raises(Exception, match="(?i)disallowed host-to-device transfer"):
    _run(tmp_path, toy.toy_config(eval_every=6))  # stage1's program: compiled already.


def test_config_errors_before_any_work(tmp_path):
  with pytest.raises(ConfigError, match="batch_size=12 must divide by"):
    _run(tmp_path, toy.toy_config(batch_size=12))
  with pytest.raises(ConfigError, match="on_nonfinite='ignore'"):
    _run(tmp_path, toy.toy_config(on_nonfinite="ignore"))
  with pytest.raises(trainer.TrainError, match=r"lacks \['loss_fn'\]"):
    trainer.train(toy.toy_config(), str(tmp_path), object.__new__(type("M", (), {"init": id})),
                  toy.toy_data(batch_size=16))


def test_several_steps_a_call_train_the_same_model_and_resume_exactly(stage1, tmp_path):
  result, _, calls = stage1
  seen = []

  def hook(step, params):
    seen.append(step)
    return {"eval/kernel_norm": jnp.linalg.norm(params["head"]["kernel"])}

  # 3 steps a call: calls stop at the log / checkpoint steps (4, 8) and the eval steps (6, 12),
  # so the run mixes 3-step calls (steps 1-3, 9-11) with single steps.
  config = toy.toy_config(eval_every=6)
  config.steps_per_call = 3
  multi = _run(tmp_path / "multi", config, eval_hooks=[hook])
  assert seen == calls == [6, 12]
  for got, want in zip(jax.tree.leaves(multi.state.params), jax.tree.leaves(result.state.params)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  logged = {s: m for s, m in multi.history if "loss" in m}
  reference = {s: m for s, m in result.history if "loss" in m}
  assert sorted(logged) == sorted(reference)
  for step, metrics in reference.items():
    for key in ("loss", "learning_rate", "grad_norm"):
      np.testing.assert_allclose(logged[step][key], metrics[key], rtol=1e-5, err_msg=key)

  resumed = _killed_at_then_resumed(tmp_path / "killed", config, 10)
  assert resumed.resumed_from == "workdir"
  assert _leaves_equal_bitwise(resumed.state.params, multi.state.params)


def test_calls_never_cross_a_log_checkpoint_or_eval_step():
  every = (4, 0, 6)
  step, lengths = 0, []
  while step < 14:
    n = multistep.steps_in_call(step, 3, 14, every)
    lengths.append(n)
    step += n
  # Boundaries at 4, 6, 8, 12 and the end, 14: a 3-step call fits only in 0-3 and 8-11.
  assert lengths == [3, 1, 1, 1, 1, 1, 3, 1, 1, 1]
  assert multistep.steps_in_call(8, 3, 14, every) == 3
  assert multistep.steps_in_call(9, 3, 14, every) == 3  # Ends on the boundary at 12.
  assert multistep.steps_in_call(10, 3, 14, every) == 1
