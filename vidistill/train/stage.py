"""One stage of the method trained from its config: the library form of `vidistill train`.

    from vidistill.train import stage
    stage.train_stage(config, workdir)   # config: a configs/train/<stage>.py ConfigDict
    stage.dry_run(config)                # {stage, variant, parameters}, nothing allocated

Kept apart from vidistill/train/command.py so that importing it defines no absl flags: the
pipeline calls it once per step inside its own command.
"""
from __future__ import annotations

from absl import logging

from vidistill import flags_lib


def train_stage(config, workdir: str, *, restart: bool = False):
  """Trains the stage `config` describes into `workdir` (the library form of this command).

  Nothing is written before the config, its inputs and the workdir's earlier run (if any) are
  checked (vidistill/train/preflight.py); `restart` deletes that earlier run first.
  """
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import config as config_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import preflight  # pylint: disable=g-import-not-at-top
  from vidistill.train import restore, stage_input, trainer  # pylint: disable=g-import-not-at-top
  from vidistill.train import streaming  # pylint: disable=g-import-not-at-top

  config_lib.validate(config)
  preflight.check_steps(config)
  preflight.check_world(config)
  preflight.check_workdir(config, workdir, restart=restart)

  if config.data.kind == "contrastive" and config.get("caption_source") in ("pseudo", "frame") \
      and not config.data.captions_dir:
    raise flags_lib.UsageError(f"caption source {config.caption_source!r} needs "
                               "--config.data.captions_dir=<the captioning job's --output>")
  init_fn = import_init(config)
  vocab = stage_input.vocabulary(config.data)
  # What caption, eval and the next stage read instead of repeating frames / resolution / vocab.
  shapes = restore.stage_shapes(config, vocab)
  model = build_lib.build(config.model, vocab_size=vocab.vocab_size, dtype=config.dtype,
                          mesh=mesh_lib.make_mesh(dict(config.mesh)), vocab=vocab,
                          text_length=int(config.data.seq_lengths.get("targets", 32)))
  family = build_lib.family(config.model.kind)
  name = f"{config.get('stage', 'stage')}"
  batch_size, seed = int(config.batch_size), int(config.seed)
  if streaming.streams(config.data):
    # Streamed from ArrayRecord shards (vidistill/train/streaming.py): nothing is decoded here.
    size = streaming.dataset_size(config.data, family, (shapes.num_frames, shapes.resolution))
    logging.info("train: streaming %d examples from %s", size, config.data.shards)
    data = streaming.data_fn(config.data, batch_size=batch_size, seed=seed)
  else:
    examples = (streaming.load_shards(config.data) if config.data.get("shards") else
                stage_input.load_examples(config.data, vocab, family, name=name))
    size = len(examples)
    logging.info("train: %d examples in memory", size)
    data = stage_input.data_fn(config.data, examples, batch_size=batch_size, seed=seed,
                               model_kind=family)
  if config.get("dataset_size") is None:
    config.dataset_size = size
  preflight.check_init(config, model)
  restore.check_init_shapes(config, shapes)
  with config.unlocked():
    config.shapes = shapes.as_dict()
  restore.write_config(config, workdir)
  result = trainer.train(config, workdir, model, data,
                         eval_hooks=eval_hooks(config, model, vocab, workdir, shapes),
                         import_init=init_fn)
  last = result.history[-1][1] if result.history else {}
  logging.info("train: finished at step %d (%s)", result.step,
               ", ".join(f"{k}={v:.4g}" for k, v in sorted(last.items())))
  return result


def write_shards(config, output: str, num_shards: int) -> tuple[list[str], int]:
  """The stage's training examples as ArrayRecord shards at `output` (vidistill/train/
  streaming.py); returns the paths and the example count."""
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import config as config_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import preflight  # pylint: disable=g-import-not-at-top
  from vidistill.train import stage_input, streaming  # pylint: disable=g-import-not-at-top
  config_lib.validate(config)
  preflight.check_world(config)
  vocab = stage_input.vocabulary(config.data)
  return streaming.write_stage_shards(config.data, vocab, build_lib.family(config.model.kind),
                                      output, num_shards, name=str(config.get("stage", "stage")))


def import_init(config):
  """`config.init.import_*` as the trainer's import_init (None when nothing is imported)."""
  from vidistill.convert import imports  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  entries = imports.entries_from_config(
      config.init, build_lib.IMPORT_TARGETS.get(config.model.kind, {}))
  if not entries:
    return None
  for _, spec in entries:  # a missing file or unknown format fails before any data is read
    imports.parse_spec(spec)

  def fn(params):
    for root, spec in entries:
      logging.info("train: importing %s into %s", spec, root or "the whole model")
    return imports.merge(params, imports.import_params(entries, params))

  return fn


def eval_hooks(config, model, vocab, workdir: str, shapes) -> list:
  """`config.eval_config` ("path/to/suite.py:arg", e.g. configs/eval/retrieval.py:tiny,data=W) as
  a trainer hook: the suite runs on the current params every `eval_every` steps and at the end,
  writing <workdir>/eval/<step>/results.json and logging every number."""
  spec = config.get("eval_config") or ""
  if not spec:
    return []
  import os  # pylint: disable=g-import-not-at-top
  from vidistill.eval import command as eval_command  # pylint: disable=g-import-not-at-top
  from vidistill.eval.evaluators import common  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.models import vlm_text  # pylint: disable=g-import-not-at-top
  from vidistill import config_args  # pylint: disable=g-import-not-at-top
  suite = config_args.load_config(spec)
  from vidistill.models import trained as trained_lib  # pylint: disable=g-import-not-at-top
  trained_lib.fill_input_settings(suite, shapes, where="this stage (eval_config)")

  def hook(step, params):
    if build_lib.family(config.model.kind) == "vlm":
      lengths = config.data.seq_lengths
      runner = vlm_text.VLMText(model, params, vocab, prompt_length=int(lengths.get("inputs", 32)),
                                answer_length=int(lengths.get("targets", 32)))
      bound = common.VLMGenerator(runner, vlm_text.decode_config(suite.model.get("decode", {})))
    else:
      bound = model.with_params(params)
    out = eval_command.run_suite(suite, bound, os.path.join(workdir, "eval", str(step)),
                                 checkpoint=f"{workdir}@{step}")
    return {f"eval/{name}/{k}": v for name, metrics in out["results"].items()
            for k, v in metrics.items() if isinstance(v, (int, float))}

  return [hook]


def dry_run(config) -> dict:
  """Resolves the config and the model's parameter shapes without allocating them."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidistill.models import build as build_lib  # pylint: disable=g-import-not-at-top
  from vidistill.train import restore, stage_input  # pylint: disable=g-import-not-at-top
  from vidistill import fs  # pylint: disable=g-import-not-at-top
  # Without the vocabulary file (a paper config on a machine without the checkpoints) the
  # released model's size: T5's 32,128, PaliGemma's 257,152.
  vocab_size = 257_152 if config.model.kind == "paligemma" else 32_128
  if (config.data.vocab and fs.exists(config.data.vocab)) or config.data.world:
    vocab_size = stage_input.vocabulary(config.data).vocab_size
  model = build_lib.build(config.model, vocab_size=vocab_size, dtype=config.dtype)
  frames, res = ((int(config.data.num_frames), int(config.data.resolution))
                 if config.data.source != "world" or not config.data.world
                 else restore.input_size(config))
  shapes = jax.eval_shape(model.init, jax.random.key(0), restore.example_batch(config, frames, res))
  count = sum(int(getattr(x, "size", 0)) for x in jax.tree.leaves(shapes))
  return {"stage": config.get("stage"), "variant": config.get("variant"), "parameters": count}
