"""The one training loop for every stage (big_vision train.py, in labelled sections).

A stage is a config (vidistill/train/config.py) + a model (vidistill/train/model_api.py) + a data
function; nothing else changes between image pretraining, visual adaptation, language adaptation
and the dual encoder.

Resume order (the first that applies wins):
  1. this workdir's own latest complete checkpoint: params, optimizer state, step, rng and data
     position, so the run continues exactly where it stopped;
  2. `config.init.checkpoint`: params of an earlier stage (optionally a mapped subtree), fresh
     optimizer;
  3. `import_init(params)`: params imported by a converter (big_vision npz, safetensors, T5X);
  4. scratch: `model.init`.

Mechanics: the mesh comes from the config; shapes are found with `jax.eval_shape` before anything
is allocated; init is jitted with `out_shardings` from the logical rules, so each parameter is
created in its shard; ONE compiled update step (vidistill/train/step.py) with the state donated;
the step's rng is `fold_in(rng, step)`; batches are placed with
`jax.make_array_from_process_local_data`; implicit host<->device transfers inside the loop raise
(`jax.transfer_guard("disallow")` around the step).

A NaN/Inf loss or gradient never reaches the parameters: the step keeps the previous state and
records the step. With `on_nonfinite="stop"` the loop raises NonFiniteLossError naming that step
at the next log / checkpoint / eval boundary (checked there, not every step, to keep the device
queue full), before any checkpoint is written; with "skip" training goes on and `skipped_steps`
is logged.

Multi-host: call `vidistill.parallel.multihost.initialize()` before `train` (before anything
touches devices). Each process passes its own rows; the data function receives
(start_step, process_index, process_count).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding

from vidistill import fs
from vidistill import runtime
from vidistill.config_args import ConfigError, resolve_steps
from vidistill.models import param_paths
from vidistill.parallel import mesh as mesh_lib
from vidistill.parallel import partitioning
from vidistill.train import checkpoints as ckpt_lib
from vidistill.train import config as config_lib
from vidistill.train import input as input_lib
from vidistill.train import metrics as metrics_lib
from vidistill.train import model_api
from vidistill.train import multistep
from vidistill.train import optim as optim_lib
from vidistill.train import schedules
from vidistill.train import state as state_lib
from vidistill.train import step as step_lib

DataFn = Callable[..., Iterator[Mapping[str, np.ndarray]]]
EvalHook = Callable[[int, Any], Mapping[str, float]]


class TrainError(RuntimeError):
  """The run cannot go on (inputs, shapes, or a mismatch between config and model)."""


class NonFiniteLossError(TrainError):
  """The loss or gradient became NaN/Inf; the message names the step."""


@dataclasses.dataclass
class TrainResult:
  state: state_lib.TrainState   # Final state (params sharded on the mesh).
  step: int                     # Steps done in total (including those before a resume).
  resumed_from: str             # "workdir" | "init.checkpoint" | "import" | "scratch".
  history: list[tuple[int, dict[str, float]]]  # The logged scalars, (step, {name: value}).


@dataclasses.dataclass
class _Setup:
  """What the model section hands to the resume, step and loop sections."""
  rules: partitioning.Rules
  batch_sharding: NamedSharding
  schedule: Any
  tx: Any
  frozen_mask: Any
  param_shardings: Any
  shardings: state_lib.TrainState
  abstract_state: state_lib.TrainState
  init_state: Callable[[], state_lib.TrainState]
  state_from_params: Callable[[Any], state_lib.TrainState]


def train(config: Any, workdir: str, model: Any, data: DataFn, *,
          eval_hooks: Sequence[EvalHook] = (), import_init: Callable[[Any], Any] | None = None,
          writer: Any = None) -> TrainResult:
  """Trains `model` as `config` says, checkpointing into `<workdir>/checkpoints`.

  Args:
    config: a ConfigDict with the keys of `vidistill.train.config.base_config()`.
    workdir: this run's directory (created); rerunning with the same workdir resumes.
    model: a `model_api.TrainableModel`.
    data: `data(start_step=, process_index=, process_count=)` -> iterator of this process's
      rows of each global batch (dict of numpy arrays, leading dim batch_size / process_count),
      e.g. `functools.partial(input.batches, task, batch_size=..., seq_lengths=..., seed=...)`.
    eval_hooks: `(step, params) -> {name: scalar}`, run every `eval_every` steps and at the end.
    import_init: `(initialised params) -> params` (resume option 3), e.g. a weight converter:
      host (numpy) leaves are placed onto their shards, jax.Array leaves kept as initialised.
    writer: a clu MetricWriter; default TensorBoard + console (console only on other processes).
  """
  config_lib.validate(config)
  if not isinstance(model, model_api.TrainableModel):
    missing = [m for m in ("init", "loss_fn") if not callable(getattr(model, m, None))]
    raise TrainError(f"model {type(model).__name__} lacks {missing}; see "
                     "vidistill/train/model_api.py for what the trainer calls")
  total_steps = resolve_steps("total", config, examples_per_step=int(config.batch_size),
                              dataset_size=config.dataset_size)
  fs.makedirs(workdir)
  writer = writer or metrics_lib.make_writer(workdir, tensorboard=config.tensorboard)
  with contextlib.ExitStack() as cleanup:
    ckpts = ckpt_lib.Checkpoints(os.path.join(workdir, ckpt_lib.SUBDIR),
                                 keep=int(config.keep_checkpoints),
                                 async_save=bool(config.async_checkpoints))
    # close() waits for an in-flight save: an interrupted run keeps its last checkpoint.
    cleanup.callback(ckpts.close)
    return _train(config, model, data, ckpts, cleanup, total_steps=total_steps,
                  eval_hooks=eval_hooks, import_init=import_init, writer=writer)


def _train(config: Any, model: Any, data: DataFn, ckpts: ckpt_lib.Checkpoints,
           cleanup: contextlib.ExitStack, *, total_steps: int, eval_hooks: Sequence[EvalHook],
           import_init: Callable[[Any], Any] | None, writer: Any) -> TrainResult:
  # ------------------------------------------------------------------- mesh and batch shape
  batch_size, accum = int(config.batch_size), int(config.optim.accum_steps)
  mesh = _make_mesh(dict(config.mesh), batch_size // accum)
  batch_shards = math.prod(mesh.shape[a] for a in partitioning.BATCH_AXES if a in mesh.shape)
  if batch_size % (batch_shards * accum) or batch_size % jax.process_count():
    raise ConfigError(
        f"config.batch_size={batch_size} must divide by (batch-sharded devices {batch_shards}) x "
        f"(optim.accum_steps {accum}) and by the process count {jax.process_count()}")
  logging.info("mesh %s over %d devices (%d processes); %d steps of %d examples",
               dict(mesh.shape), mesh.size, jax.process_count(), total_steps, batch_size)

  # ------------------------------------------ data, from where this workdir's checkpoint left
  resume_step = ckpts.latest_step()
  position = int(ckpts.read_meta(resume_step)["data_position"]) if resume_step is not None else 0
  where = dict(process_index=jax.process_index(), process_count=jax.process_count())
  batches = cleanup.enter_context(contextlib.closing(input_lib.prefetch(
      data(start_step=position, **where), int(config.prefetch))))
  first = next(batches, None) if position < total_steps else None
  example = first if first is not None else next(iter(data(start_step=0, **where)))
  _check_rows(example, batch_size // jax.process_count(), batch_size)

  # ------------------------------------------------------- model, optimizer, shardings (abstract)
  setup = abstract_setup(config, model, mesh, example, total_steps)

  # -------------------------------- resume: workdir -> init.checkpoint -> import -> scratch
  state, resumed_from = _initial_state(config, setup, ckpts, resume_step, import_init)
  start_step = int(jax.device_get(state.step))
  if start_step != position:
    raise TrainError(f"checkpoint {ckpts.directory}/{resume_step} is inconsistent: step "
                     f"{start_step} but data position {position}")

  # -------------------------------------------------------------------- the compiled step
  step_fn = step_lib.make_train_step(
      model, setup.tx, setup.schedule, setup.frozen_mask, accum_steps=accum,
      compute_dtype=jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32,
      on_nonfinite=config.on_nonfinite, micro_batch_sharding=setup.batch_sharding)
  abstract_batch = {k: jax.ShapeDtypeStruct((batch_size,) + v.shape[1:], v.dtype,
                                            sharding=setup.batch_sharding)
                    for k, v in example.items()}
  calls: dict[int, Any] = {}

  def compiled_for(n: int) -> Any:
    """The step (n = 1) or n steps in one call, compiled once each."""
    if n not in calls:
      t0 = time.perf_counter()
      fn, sharding, batch = step_fn, setup.batch_sharding, abstract_batch
      if n > 1:
        fn, sharding = multistep.scan_steps(step_fn), multistep.stacked_sharding(sharding)
        batch = {k: jax.ShapeDtypeStruct((n,) + v.shape, v.dtype, sharding=sharding)
                 for k, v in abstract_batch.items()}
      with partitioning.axis_rules(mesh, setup.rules):
        calls[n] = jax.jit(fn, in_shardings=(setup.shardings, sharding),
                           out_shardings=(setup.shardings, partitioning.replicated(mesh)),
                           donate_argnums=(0,)).lower(setup.abstract_state, batch).compile()
      logging.info("train step compiled in %.1f s%s", time.perf_counter() - t0,
                   f" ({n} steps a call)" if n > 1 else "")
    return calls[n]

  progress = _progress(config, model, lambda: metrics_lib.compiled_flops(compiled_for(1)),
                       example, mesh, total_steps, start_step)

  # --------------------------------------------------------------------------- the loop
  history: list[tuple[int, dict[str, float]]] = []
  pending: list[dict[str, jax.Array]] = []
  ckpt_every, eval_every = int(config.checkpoint_every), int(config.eval_every)
  boundaries = (int(config.log_every), ckpt_every, eval_every)
  step = start_step
  while step < total_steps:
    n = multistep.steps_in_call(step, int(config.steps_per_call), total_steps, boundaries)
    local = []
    for i in range(n):
      local.append(first if step + i == start_step else next(batches, None))
      if local[-1] is None:
        raise TrainError(f"the data ran out at step {step + i} of {total_steps}; use a "
                         "repeating source or fewer steps")
    # Placement is explicit and stays outside the guard (multi-process placement goes through a
    # path the guard would count as implicit).
    if n == 1:
      global_batch = _global_batch(local[0], setup.batch_sharding)
    else:
      global_batch = _global_batch(multistep.stack(local),
                                   multistep.stacked_sharding(setup.batch_sharding), axis=1)
    with jax.transfer_guard("disallow"):
      state, step_metrics = compiled_for(n)(state, global_batch)
    pending.append(step_metrics)
    for one in local:
      progress.add_tokens(metrics_lib.count_tokens(one) * jax.process_count())

    done = step = step + n
    final = done == total_steps
    log_now = done % int(config.log_every) == 0 or final
    save_now = bool(ckpt_every and done % ckpt_every == 0) or final
    eval_now = bool(eval_hooks) and (bool(eval_every and done % eval_every == 0) or final)
    if config.on_nonfinite == "stop" and (log_now or save_now or eval_now):
      _raise_if_nonfinite(state, done)
    if log_now:
      scalars = _mean_metrics(pending)
      pending = []
      scalars["skipped_steps"] = float(jax.device_get(state.skipped_steps))
      measures = progress.measure(done)
      scalars.update({k: v for k, v in measures.items() if k != "eta_seconds"})
      writer.write_scalars(done, scalars)
      history.append((done, scalars))
      logging.info("%s", progress.line(done, measures, scalars["loss"]))
    if save_now:
      with progress.excluded():
        ckpts.save(done, state, {"step": done, "data_position": done,
                                 "examples_seen": done * batch_size,
                                 "process_count": jax.process_count()})
    if eval_now:
      with progress.excluded():
        results = {}
        for hook in eval_hooks:
          results.update({k: float(v) for k, v in hook(done, state.params).items()})
        writer.write_scalars(done, results)
        history.append((done, results))
  ckpts.wait()
  writer.flush()
  return TrainResult(state=state, step=int(jax.device_get(state.step)),
                     resumed_from=resumed_from, history=history)


def _make_mesh(shape: dict[str, int], micro_batch: int) -> jax.sharding.Mesh:
  """The config's mesh over every device; over the most that split `micro_batch` evenly when the
  devices are the automatic one-per-core CPU layout (vidistill/runtime.py), which depends on the
  machine: a tiny config's batch of 4 still trains on 6 cores."""
  devices = jax.devices()
  if runtime.auto_cpu_devices() is None or jax.process_count() > 1:
    return mesh_lib.make_mesh(shape, devices)
  for n in range(len(devices), 0, -1):
    try:
      mesh = mesh_lib.make_mesh(shape, devices[:n])
    except mesh_lib.MeshError:
      continue
    if micro_batch % math.prod(mesh.shape[a] for a in partitioning.BATCH_AXES if a in mesh.shape):
      continue
    if n < len(devices):
      logging.info("batch of %d examples: training on %d of the %d CPU devices", micro_batch, n,
                   len(devices))
    return mesh
  return mesh_lib.make_mesh(shape, devices)  # Raises the mesh's own error.


def one_shot_compiler_options(mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """XLA options for a program that runs once (the parameters' init) on `mesh`.

  On CPU, XLA's backend optimisations triple the init's compile time (threefry's unrolled random
  bits for every parameter: 24 s -> 8 s for the miniature VLM, measured) and buy nothing for one
  run; the values differ from an optimised build by float rounding only (~5e-7). Elsewhere: {}.
  """
  if mesh.devices.flat[0].platform == "cpu":
    return {"xla_backend_optimization_level": 0}
  return {}


def abstract_setup(config: Any, model: Any, mesh: jax.sharding.Mesh,
                   example: Mapping[str, np.ndarray],
                   total_steps: int) -> _Setup:
  """Shapes and shardings of everything, found with eval_shape: nothing is allocated here."""
  rules = partitioning.make_rules(config.sharding_rules)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(int(config.seed)))
  # Parameter shapes do not depend on the batch size: initialise with one example.
  init_batch = {k: jax.ShapeDtypeStruct((1,) + v.shape[1:], v.dtype) for k, v in example.items()}
  with partitioning.axis_rules(mesh, rules):
    boxed = jax.eval_shape(model.init, init_rng, init_batch)
  extra = sorted(set(boxed) - {"params"})
  if extra:
    raise TrainError(f"model.init returned collections {extra} besides 'params'; the trainer "
                     "trains 'params' only (make the model stateless)")
  param_shardings = partitioning.param_shardings(boxed["params"], mesh, rules)
  abstract_params = step_lib.to_float32(partitioning.unbox(boxed["params"]))
  schedule = schedules.make_schedule(config.schedule, base_lr=float(config.optim.lr),
                                     total_steps=total_steps)
  tx, frozen_mask = optim_lib.make_optimizer(config.optim, schedule, abstract_params,
                                             list(config.frozen))
  shardings = state_lib.state_shardings(jax.eval_shape(tx.init, abstract_params),
                                        abstract_params, param_shardings, mesh)

  def init_fn(rng_init, rng_train):
    zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in init_batch.items()}
    params = step_lib.to_float32(partitioning.unbox(model.init(rng_init, zeros)["params"]))
    return state_lib.new_state(params, tx.init(params), rng_train)

  with partitioning.axis_rules(mesh, rules):
    abstract_state = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        jax.eval_shape(init_fn, init_rng, train_rng), shardings)
  jitted_init = jax.jit(init_fn, out_shardings=shardings)

  def init_state():
    with partitioning.axis_rules(mesh, rules):
      lowered = jitted_init.lower(init_rng, train_rng)
      return lowered.compile(one_shot_compiler_options(mesh))(init_rng, train_rng)

  # A stage that starts from a checkpoint needs only the optimizer state built: compiling the
  # model's init (the whole forward pass) for parameters that are overwritten costs more than
  # the short stages of a pipeline train.
  jitted_from_params = jax.jit(lambda p, r: state_lib.new_state(p, tx.init(p), r),
                               out_shardings=shardings, donate_argnums=(0,))

  def state_from_params(params):
    with partitioning.axis_rules(mesh, rules):
      return jitted_from_params(params, train_rng)

  trainable = jax.tree.map(lambda f: not f, frozen_mask)
  logging.info("%d parameters, %d trainable", state_lib.count_params(abstract_params),
               state_lib.count_params(abstract_params, trainable))
  return _Setup(rules=rules, batch_sharding=partitioning.data_sharding(mesh),
                schedule=schedule, tx=tx, frozen_mask=frozen_mask,
                param_shardings=param_shardings, shardings=shardings,
                abstract_state=abstract_state, init_state=init_state,
                state_from_params=state_from_params)


def _initial_state(config: Any, setup: _Setup, ckpts: ckpt_lib.Checkpoints,
                   resume_step: int | None, import_init: Callable[[Any], Any] | None,
                   ) -> tuple[state_lib.TrainState, str]:
  """The resume order of the module docstring; returns the state and where it came from."""
  if resume_step is not None:
    logging.info("resuming from %s/%d", ckpts.directory, resume_step)
    state, _ = ckpts.restore(resume_step, setup.abstract_state)
    return state, "workdir"
  if config.init.checkpoint:
    params = ckpt_lib.load_params(config.init.checkpoint, setup.abstract_state.params,
                                  strict=bool(config.init.strict),
                                  params_map=config.init.params_map)
    fresh = [isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(params)]
    if not any(fresh):
      return setup.state_from_params(params), "init.checkpoint"
    # Some parameters are not in the checkpoint (init.strict=False): they keep their init.
    state = setup.init_state()
    params = jax.tree.map(lambda x, init: init if isinstance(x, jax.ShapeDtypeStruct) else x,
                          params, state.params)
    return state.replace(params=params), "init.checkpoint"
  state = setup.init_state()
  if import_init is not None:
    params = import_init(state.params)
    _check_same_tree(params, setup.abstract_state.params)
    # Host arrays (the imported leaves) go straight to their shards: each device receives its
    # slice only, and nothing holds a second full copy. Leaves kept from the init stay put.
    params = jax.tree.map(lambda x, s: x if isinstance(x, jax.Array) else _place(x, s),
                          params, setup.param_shardings)
    return state.replace(params=params), "import"
  return state, "scratch"


def _place(value: Any, sharding: NamedSharding) -> jax.Array:
  value = np.asarray(value)
  if value.dtype != np.float32:  # master weights are float32 (a bf16 checkpoint is upcast)
    value = value.astype(np.float32)
  return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def _progress(config: Any, model: Any, compiled_flops: Callable[[], float],
              example: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh, total_steps: int,
              start_step: int) -> metrics_lib.StepMeter:
  """Throughput / MFU bookkeeping: model FLOPs (or XLA's count of one step) against the peak."""
  forward = model_api.forward_flops_per_example(model, example)
  batch_size = int(config.batch_size)
  flops_per_step = (forward * batch_size * model_api.TRAIN_FLOPS_PER_FORWARD_FLOP
                    if forward is not None else compiled_flops())
  peak = float(config.peak_flops_per_device)
  if not peak:
    peak = metrics_lib.measure_peak_flops()
    logging.info("measured %.3g FLOP/s per device (matmul); set config.peak_flops_per_device to "
                 "the datasheet peak for a true MFU", peak)
  return metrics_lib.StepMeter(total_steps=total_steps, start_step=start_step,
                              examples_per_step=batch_size, flops_per_step=flops_per_step,
                              peak_flops=peak * mesh.size)


def _check_rows(example: Mapping[str, np.ndarray], rows: int, batch_size: int) -> None:
  for key, value in example.items():
    if value.shape[:1] != (rows,):
      raise TrainError(f"batch field {key!r} has shape {value.shape}; expected {rows} rows "
                       f"(batch_size {batch_size} / {jax.process_count()} processes) first")


def _global_batch(local: Mapping[str, np.ndarray], sharding: NamedSharding, *,
                  axis: int = 0) -> dict[str, jax.Array]:
  """This process's rows (along `axis`) of every field -> global arrays."""
  count = jax.process_count()

  def shape(v):
    return v.shape[:axis] + (v.shape[axis] * count,) + v.shape[axis + 1:]
  return {k: jax.make_array_from_process_local_data(sharding, v, shape(v))
          for k, v in local.items()}


def _mean_metrics(pending: Sequence[Mapping[str, Any]]) -> dict[str, float]:
  """The mean of each metric over the steps since the last log; a call of several steps
  contributes one value a step."""
  fetched = jax.device_get(list(pending))
  out = {k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in fetched])))
         for k in fetched[-1]}
  # The current learning rate, not a mean.
  out["learning_rate"] = float(np.ravel(fetched[-1]["learning_rate"])[-1])
  return out


def _raise_if_nonfinite(state: state_lib.TrainState, step: int) -> None:
  bad = int(jax.device_get(state.nonfinite_step))
  if bad >= 0:
    raise NonFiniteLossError(
        f"the loss or gradient was NaN/Inf at step {bad} (noticed after step {step}); the "
        f"parameters and checkpoints are those from before step {bad}. Lower optim.lr, raise "
        "schedule.warmup_steps, use dtype=float32, or set on_nonfinite='skip'")


def _check_same_tree(params: Any, abstract_params: Any) -> None:
  got = {k: tuple(np.shape(v)) for k, v in param_paths.flatten(params).items()}
  want = {k: tuple(v.shape) for k, v in param_paths.flatten(abstract_params).items()}
  if got != want:
    missing = sorted(set(want) - set(got))
    unknown = sorted(set(got) - set(want))
    shapes = [f"{k}: {got[k]} vs model {want[k]}" for k in sorted(set(got) & set(want))
              if got[k] != want[k]]
    raise TrainError(f"import_init returned params that do not match the model: missing "
                     f"{missing[:10]}, unknown {unknown[:10]}, shapes {shapes[:10]}")
