"""A stage compiled ahead of time for a TPU topology on a CPU host (maxtext's train_compile).

    vidistill train --config configs/train/visual_adaptation.py:paper \
        --compile_topology=v5e:16x16 --workdir /tmp/aot

libtpu (`pip install -e '.[tpu]'`) describes the chips of a topology without any TPU being present
(`jax.experimental.topologies`); the stage's real update step (the trainer's own step function,
optimizer, frozen mask and shardings, vidistill/train/step.py and trainer.abstract_setup) is lowered
on abstract parameter, optimizer-state and batch shapes placed on a mesh of those chips and
compiled by XLA's TPU compiler. Nothing is allocated. For a VLM stage the captioning job's decode
is compiled too: the encoder pass with the cross-attention cache, and one cached decoding step, at
the batch of configs/caption/pseudo_caption.py (per host, times the topology's hosts).

Reported per program: per-device memory (XLA's memory analysis; parameters, optimizer state and
batch from the shardings) against the chip's HBM, model FLOPs, the estimated time of one call, the
implied MFU and the schedule's wall clock. The time is a roofline, the largest of: XLA's estimate
(`optimal_seconds` of its TPU cost model; negative, so unused, when the model cannot price an op
such as the embedding gradient's scatter), the program's matmul FLOPs (counted from its jaxpr,
backward and rematerialisation included) at the chip's peak, and XLA's count of HBM bytes
accessed at the chip's bandwidth. Model FLOPs of a train step are the matmuls of the loss's
gradient as the step takes it, counted without rematerialisation: a frozen half (the LM in visual
adaptation, the ViT in language adaptation) needs no weight gradients, so this is less than the
trainer's 3x forward, which would put a frozen stage's MFU above 100%. XLA's cost analysis counts a loop body once, so for scanned
layers its FLOPs, bytes and seconds cover one layer; the jaxpr count covers all. These are
estimates, not measurements on a TPU.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import re
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from vidistill import fs
from vidistill.config_args import resolve_steps
from vidistill.parallel import mesh as mesh_lib
from vidistill.parallel import partitioning

GiB = 1 << 30
# Per chip, from the Google Cloud TPU datasheets: HBM bytes, bf16 peak FLOP/s, HBM bytes/s.
# libtpu may expose one device per TensorCore (v4: 2 a chip), so all are divided by the devices
# per chip.
CHIPS = {
    "TPU v5 lite": ("v5e", 16 * GiB, 197e12, 819e9),
    "TPU v5": ("v5p", 95 * GiB, 459e12, 2765e9),
    "TPU v4": ("v4", 32 * GiB, 275e12, 1228e9),
    "TPU v6 lite": ("v6e", 32 * GiB, 918e12, 1640e9),
}
EXAMPLES = "v5e:16x16 (v5e-256), v5e:2x2, v5p:8x8x4, v4:4x4x4, v6e:16x16"
CAPTION_CLIPS = 17_000_000  # clips pseudo-captioned in the paper (VideoCC + InternVid, Sec. 4)


class TopologyError(ValueError):
  """libtpu is missing or does not know the topology name (a usage error)."""


class DoesNotFitError(RuntimeError):
  """A compiled program needs more memory per device than the chip has."""


@dataclasses.dataclass
class Chip:
  kind: str                 # v5e | v5p | v4 | v6e
  hbm_bytes: float          # per device
  peak_flops: float         # bf16 FLOP/s per device
  hbm_bandwidth: float      # bytes/s per device
  devices: list[Any]
  hosts: int


def topology(name: str) -> Chip:
  """The devices of a libtpu topology ("v5e:16x16") and their chip's datasheet figures."""
  if importlib.util.find_spec("libtpu") is None:
    raise TopologyError(
        f"--compile_topology={name} needs libtpu, which describes TPU chips on any host: "
        f"pip install -e '.[tpu]' (or pip install 'jax[tpu]=={jax.__version__}')")
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  # libtpu takes a host-wide lock when loaded; describing a topology uses no chip, so several
  # compiles (tests, sweeps) may share the host.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  try:
    desc = topologies.get_topology_desc(platform="tpu", topology_name=name)
  except Exception as e:  # pylint: disable=broad-except
    raise TopologyError(f"--compile_topology={name!r}: libtpu does not know it "
                        f"({str(e).splitlines()[0][:200]}); names look like {EXAMPLES}") from None
  devices = list(desc.devices)
  kind = devices[0].device_kind
  if kind not in CHIPS:
    raise TopologyError(f"--compile_topology={name!r}: no datasheet figures for {kind!r} "
                        f"(known: {sorted(CHIPS)}); add them to compile_topology.CHIPS")
  short, hbm, peak, bandwidth = CHIPS[kind]
  dims = [int(d) for d in re.findall(r"\d+", name.partition(":")[2])]
  per_chip = max(1, len(devices) // math.prod(dims)) if dims else 1
  return Chip(kind=short, hbm_bytes=hbm / per_chip, peak_flops=peak / per_chip,
              hbm_bandwidth=bandwidth / per_chip, devices=devices,
              hosts=len({d.process_index for d in devices}))


def make_mesh(shape: Mapping[str, int], devices: Sequence[Any]) -> Mesh:
  """The config's mesh over `devices`, laid out for the torus where XLA's helper can."""
  from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top
  sizes = mesh_lib.resolve_mesh_shape(dict(shape), len(devices))
  dims = tuple(sizes.values())
  try:
    grid = mesh_utils.create_device_mesh(dims, devices=list(devices))
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices, dtype=object).reshape(dims)
  return Mesh(grid, tuple(sizes), axis_types=(jax.sharding.AxisType.Auto,) * len(sizes))


def device_bytes(tree: Any) -> int:
  """Bytes one device holds of a tree of ShapeDtypeStructs with NamedShardings (the largest
  shard: a dimension that does not divide evenly is padded)."""
  total = 0
  for x in jax.tree.leaves(tree):
    shape = x.sharding.shard_shape(x.shape) if x.sharding is not None else x.shape
    total += math.prod(shape) * jnp.dtype(x.dtype).itemsize
  return int(total)


@dataclasses.dataclass
class ProgramStats:
  """One compiled program on one topology; bytes and FLOPs are per device unless named global."""
  program: str
  topology: str
  chip: str
  devices: int
  mesh: dict[str, int]
  compile_seconds: float
  argument_bytes: int
  output_bytes: int
  alias_bytes: int
  temp_bytes: int
  code_bytes: int
  parts: dict[str, int]              # parameters / optimizer state / batch / cache, per device
  xla_flops: float                   # XLA's count for one call, per device
  model_flops: float                 # global, from the jaxpr (train: the gradient, nothing
                                     # recomputed, no weight gradients of frozen parameters)
  program_flops: float               # global matmul FLOPs of the program's jaxpr (remat included)
  xla_seconds: float                 # XLA's estimated time of one call (optimal_seconds; < 0
                                     # when its cost model cannot price an op, e.g. a scatter)
  xla_bytes_accessed: float          # XLA's count of HBM traffic of one call, per device
  hbm_bytes: float
  peak_flops: float                  # per device
  hbm_bandwidth: float               # bytes/s per device
  calls: float                       # calls in the schedule (train steps, decode steps, ...)
  note: str = ""

  @property
  def peak_bytes(self) -> int:
    """Live at once: inputs, outputs not aliased to (donated) inputs, temporaries, code."""
    return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes + (
        self.code_bytes)

  @property
  def flop_bound_seconds(self) -> float:
    """The program's matmuls at the chip's peak: no call can be faster."""
    return self.program_flops / (self.devices * self.peak_flops)

  @property
  def memory_bound_seconds(self) -> float:
    """XLA's HBM traffic at the chip's bandwidth."""
    return self.xla_bytes_accessed / self.hbm_bandwidth

  @property
  def seconds(self) -> float:
    """Estimated time of one call: a roofline (see the module docstring)."""
    return max(self.xla_seconds, self.flop_bound_seconds, self.memory_bound_seconds)

  @property
  def mfu(self) -> float:
    return self.model_flops / (self.devices * self.peak_flops * self.seconds) if (
        self.seconds > 0) else 0.0

  @property
  def schedule_days(self) -> float:
    return self.calls * self.seconds / 86400

  def dominant(self) -> tuple[str, int]:
    parts = dict(self.parts)
    parts["temporaries (activations)"] = self.temp_bytes
    return max(parts.items(), key=lambda kv: kv[1])

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out.update(peak_bytes=self.peak_bytes, flop_bound_seconds=self.flop_bound_seconds,
               memory_bound_seconds=self.memory_bound_seconds,
               seconds=self.seconds, mfu=self.mfu, schedule_days=self.schedule_days,
               fits=self.peak_bytes <= self.hbm_bytes)
    return out


def compile_program(name: str, fn: Callable[..., Any], args: Sequence[Any], *, chip: Chip,
                    topology_name: str, mesh: Mesh, rules: Any, out_shardings: Any,
                    parts: Mapping[str, int], calls: float, model_flops: float | None = None,
                    donate_argnums: tuple[int, ...] = (), note: str = "") -> ProgramStats:
  """Lowers `fn(*args)` (ShapeDtypeStructs carrying their shardings) and compiles it for TPU.
  `model_flops` defaults to the program's own jaxpr count (inference: nothing recomputed)."""
  from vidistill.benchmarks import flops  # pylint: disable=g-import-not-at-top
  in_shardings = jax.tree.map(lambda x: x.sharding, tuple(args))
  with partitioning.axis_rules(mesh, rules):
    program_flops = flops.count(fn, *args)
  t0 = time.perf_counter()
  with partitioning.axis_rules(mesh, rules):
    lowered = jax.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings,
                      donate_argnums=donate_argnums).lower(*args)
    try:
      compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as e:
      if "RESOURCE_EXHAUSTED" not in str(e):
        raise
      # XLA's TPU compiler refuses a program whose temporaries alone exceed the chip's HBM.
      raise DoesNotFitError(
          f"{name} does not fit {topology_name} ({chip.kind}, {_gib(chip.hbm_bytes)} GiB a "
          f"device): {str(e).splitlines()[0].split(': ', 1)[-1]} Shard more (config.mesh.fsdp / "
          "model), rematerialise (model remat_policy=full), or scan the layers") from None
  seconds = time.perf_counter() - t0
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return ProgramStats(
      program=name, topology=topology_name, chip=chip.kind, devices=len(chip.devices),
      mesh=dict(mesh.shape), compile_seconds=seconds,
      argument_bytes=int(memory.argument_size_in_bytes),
      output_bytes=int(memory.output_size_in_bytes), alias_bytes=int(memory.alias_size_in_bytes),
      temp_bytes=int(memory.temp_size_in_bytes),
      code_bytes=int(memory.generated_code_size_in_bytes), parts=dict(parts),
      xla_flops=float(cost.get("flops", 0.0)),
      model_flops=float(program_flops if model_flops is None else model_flops),
      program_flops=float(program_flops), xla_seconds=float(cost.get("optimal_seconds", 0.0)),
      xla_bytes_accessed=float(cost.get("bytes accessed", 0.0)), hbm_bytes=chip.hbm_bytes,
      peak_flops=chip.peak_flops, hbm_bandwidth=chip.hbm_bandwidth, calls=float(calls), note=note)


def _gib(x: float) -> str:
  return f"{x / GiB:.2f}"


def _xla(seconds: float) -> str:
  return f"{seconds:.3g}" if seconds > 0 else "n/a"


def table(stats: Sequence[ProgramStats]) -> str:
  """A markdown table, one row per program."""
  head = ("| program | topology | mesh | params GiB | opt state GiB | temps GiB | peak / HBM GiB "
          "| model TFLOP/call | XLA s | FLOP-bound s | HBM-bound s | est. s/call | MFU "
          "| schedule days | compile s |")
  rows = [head, "|" + "---|" * 15]
  for s in stats:
    mesh = "x".join(f"{k}{v}" for k, v in s.mesh.items() if v > 1) or "1"
    fits = "" if s.peak_bytes <= s.hbm_bytes else " **does not fit**"
    rows.append(
        f"| {s.program} | {s.topology} | {mesh} | {_gib(s.parts.get('parameters', 0))} | "
        f"{_gib(s.parts.get('optimizer state', 0))} | {_gib(s.temp_bytes)} | "
        f"{_gib(s.peak_bytes)} / {_gib(s.hbm_bytes)}{fits} | {s.model_flops / 1e12:,.1f} | "
        f"{_xla(s.xla_seconds)} | {s.flop_bound_seconds:.3g} | {s.memory_bound_seconds:.3g} | "
        f"{s.seconds:.3g} | {s.mfu:.0%} | "
        f"{s.schedule_days:.2f} | {s.compile_seconds:.0f} |")
  return "\n".join(rows)


def check_fits(stats: Sequence[ProgramStats]) -> None:
  """Raises DoesNotFitError naming each program that does not fit and what dominates it."""
  bad = []
  for s in stats:
    if s.peak_bytes > s.hbm_bytes:
      what, size = s.dominant()
      bad.append(f"{s.program} needs {_gib(s.peak_bytes)} GiB a device on {s.topology} "
                 f"({s.chip}: {_gib(s.hbm_bytes)} GiB), mostly {what} ({_gib(size)} GiB)")
  if bad:
    raise DoesNotFitError("; ".join(bad) + ". Shard more (config.mesh.fsdp / model), "
                          "rematerialise (model remat_policy=full), or scan the layers")


def write_json(stats: Sequence[ProgramStats], workdir: str, topology_name: str) -> str:
  fs.makedirs(workdir)
  path = os.path.join(workdir, f"compile_{topology_name.replace(':', '_')}.json")
  with fs.open(path, "w", encoding="utf-8") as f:
    json.dump([s.as_dict() for s in stats], f, indent=2, sort_keys=True)
    f.write("\n")
  return path


def total_steps(config: Any) -> int:
  return resolve_steps("total", config, examples_per_step=int(config.batch_size),
                       dataset_size=config.get("dataset_size"))


# ------------------------------------------------------------------------------ the programs

def _abstract(tree: Any, shardings: Any, dtype: Any = None) -> Any:
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(
      x.shape, dtype if dtype is not None and jnp.issubdtype(x.dtype, jnp.floating) else x.dtype,
      sharding=s), tree, shardings)


def compile_stage(config: Any, topology_name: str, *, caption_config: Any = None,
                  vocab_size: int = 32_128) -> list[ProgramStats]:
  """The stage's train step (and, for a VLM with `caption_config`, the captioning decode)
  compiled for `topology_name`. Shapes come from the config (`data.num_frames`,
  `data.resolution`, `data.seq_lengths`), the vocabulary size from `vocab_size` (UL2's)."""
  # Imported here: the trainer pulls in orbax and the data stack, which `--help` does not need.
  from vidistill.benchmarks import flops  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import restore, step as step_lib, trainer  # pylint: disable=g-import-not-at-top
  chip = topology(topology_name)
  mesh = make_mesh(config.mesh, chip.devices)
  model = build_lib.build(config.model, vocab_size=vocab_size, dtype=config.dtype, mesh=mesh,
                          text_length=int(config.data.seq_lengths.get("targets", 32)))
  example = restore.example_batch(config, int(config.data.num_frames),
                                  int(config.data.resolution))
  steps = total_steps(config)
  setup = trainer.abstract_setup(config, model, mesh, example, steps)
  compute = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
  step_fn = step_lib.make_train_step(
      model, setup.tx, setup.schedule, setup.frozen_mask,
      accum_steps=int(config.optim.accum_steps), compute_dtype=compute,
      on_nonfinite=config.on_nonfinite, micro_batch_sharding=setup.batch_sharding)
  batch_size = int(config.batch_size)
  batch = {k: jax.ShapeDtypeStruct((batch_size,) + v.shape[1:], v.dtype,
                                   sharding=setup.batch_sharding) for k, v in example.items()}
  rng = jax.ShapeDtypeStruct((2,), jnp.uint32)
  with partitioning.axis_rules(mesh, setup.rules):
    model_flops = flops.count(
        _gradient(_without_remat(config, mesh, vocab_size), setup.frozen_mask, compute),
        setup.abstract_state.params, batch, rng)
  stats = [compile_program(
      f"{config.get('stage', 'stage')} train step", step_fn, (setup.abstract_state, batch),
      chip=chip, topology_name=topology_name, mesh=mesh, rules=setup.rules,
      out_shardings=(setup.shardings, partitioning.replicated(mesh)), donate_argnums=(0,),
      parts={"parameters": device_bytes(setup.abstract_state.params),
             "optimizer state": device_bytes(setup.abstract_state.opt_state),
             "batch": device_bytes(batch)},
      model_flops=model_flops, calls=steps,
      note=f"batch {batch_size}, {steps} steps")]
  if build_lib.family(config.model.kind) == "vlm" and caption_config is not None:
    stats += caption_programs(config, caption_config, model, setup, chip, topology_name, mesh)
  return stats


def _without_remat(config: Any, mesh: Mesh, vocab_size: int) -> Any:
  """The stage's model with every stack's `remat_policy` at "none" (same parameter tree)."""
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  model_config = config.model.copy_and_resolve_references()

  def plain(c: Any) -> None:
    for key, value in c.items():
      if key == "remat_policy":
        c[key] = "none"
      elif hasattr(value, "items"):
        plain(value)
  plain(model_config)
  return build_lib.build(model_config, vocab_size=vocab_size, dtype=config.dtype, mesh=mesh,
                         text_length=int(config.data.seq_lengths.get("targets", 32)))


def _gradient(model: Any, frozen_mask: Any, compute: Any) -> Callable[..., Any]:
  """The loss's gradient as the update step takes it (frozen leaves under stop_gradient), for
  counting model FLOPs: the forward, the backward through whatever a trained parameter depends
  on, and weight gradients of trained parameters only; nothing recomputed."""
  from vidistill.train import step as step_lib  # pylint: disable=g-import-not-at-top

  def grads(params, batch, rng):
    def loss_of(p):
      p = jax.tree.map(lambda x, f: jax.lax.stop_gradient(x) if f else x, p, frozen_mask)
      return model.loss_fn(step_lib.cast_floats(p, compute), batch, rng, train=True)[0]
    return jax.grad(loss_of)(params)
  return grads


def caption_programs(config: Any, caption: Any, model: Any, setup: Any, chip: Chip,
                     topology_name: str, mesh: Mesh) -> list[ProgramStats]:
  """The captioning job's decode: encoder pass + cross-attention cache, one cached step.

  Batch: the caption config's per-host batch times the topology's hosts, sharded over the batch
  axes; weights in the compute dtype, sharded as in training.
  """
  module = model.module
  compute = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
  params = _abstract(setup.abstract_state.params, setup.param_shardings, compute)
  rows = int(caption.batch_size) * chip.hosts
  shards = math.prod(mesh.shape[a] for a in partitioning.BATCH_AXES if a in mesh.shape)
  rows = -(-rows // shards) * shards  # a padded batch, as the job pads its last one
  # A caption config's 0 means "the checkpoint's": for this stage, the shapes it trains at.
  res = int(caption.resolution) or int(config.data.resolution)
  frames = int(caption.num_frames) or int(config.data.num_frames)
  max_len = int(caption.decode.max_decode_len)  # greedy; beams or samples multiply the rows
  by_batch = partitioning.data_sharding(mesh)
  video = jax.ShapeDtypeStruct((rows, frames, res, res, 3), jnp.uint8, sharding=by_batch)
  prompt = jax.ShapeDtypeStruct((rows, int(config.data.seq_lengths.get("inputs", 32))),
                                jnp.int32, sharding=by_batch)

  def encode(p, v, t):
    encoded, mask, _ = module.apply({"params": p}, v, t, method="encode")
    return module.apply({"params": p}, encoded, mask, max_len,
                        method="init_cache")

  def decode_step(p, tokens, cache, static, i):
    logits, cache = module.apply({"params": p}, tokens, cache, static, i,
                                 method="decode_step")
    return jnp.argmax(logits, -1).astype(jnp.int32), cache

  with partitioning.axis_rules(mesh, setup.rules):
    cache, static = jax.eval_shape(encode, params, video, prompt)
  cache = _abstract(cache, jax.tree.map(lambda _: by_batch, cache))
  static = _abstract(static, jax.tree.map(lambda _: by_batch, static))
  tokens = jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=by_batch)
  index = jax.ShapeDtypeStruct((), jnp.int32, sharding=partitioning.replicated(mesh))
  prompts = max(1, len(caption.prompts))
  batches = CAPTION_CLIPS * prompts / rows
  common = dict(chip=chip, topology_name=topology_name, mesh=mesh, rules=setup.rules)
  note = (f"{rows} clips a call ({caption.batch_size} per host), {frames} frames of {res} px, "
          f"{prompts} prompt(s); schedule: {CAPTION_CLIPS:,} clips")
  return [
      compile_program("caption encode + cache", encode, (params, video, prompt),
                      out_shardings=(jax.tree.map(lambda x: x.sharding, cache),
                                     jax.tree.map(lambda x: x.sharding, static)),
                      parts={"parameters": device_bytes(params),
                             "batch": device_bytes((video, prompt)),
                             "cache": device_bytes((cache, static))},
                      calls=batches, note=note, **common),
      compile_program("caption decode step", decode_step, (params, tokens, cache, static, index),
                      out_shardings=(by_batch, jax.tree.map(lambda x: x.sharding, cache)),
                      donate_argnums=(2,),
                      parts={"parameters": device_bytes(params),
                             "cache": device_bytes((cache, static))},
                      calls=batches * max_len,
                      note=f"{max_len} steps a batch", **common),
  ]
