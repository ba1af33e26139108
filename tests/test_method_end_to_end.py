"""The stages of the method chained on a tiny synthetic world, with the real models.

image_pretrain -> visual_adaptation (LM frozen) -> language_adaptation (vision frozen), the
adapted VLM pseudo-captions the pool (captioning job), a dual encoder trains on those captions,
and the evaluators run on the held-out split. Few steps: this checks the wiring and the freezing
across stages, not quality (that is the pipeline's report). Slow (~2.5 min on 2 cores): `pytest -m slow`.
"""
import importlib.util
import os

import jax
import numpy as np
import pytest

from vidistill.config_args import ConfigError
from vidistill.models import checkpoint_params
from vidistill.models import param_paths
from vidistill.train import stage as train_stage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(relpath, arg):
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(ROOT, relpath))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  from vidistill.data.synthetic import world
  root = tmp_path_factory.mktemp("method")
  w = str(root / "world")
  world.synth(_config("configs/data/synthetic.py", "tiny"), w)
  dirs = {name: str(root / name) for name in ("s0", "s1", "s2", "captions", "de", "eval")}
  for stage, init in (("image_pretrain", ""), ("visual_adaptation", dirs["s0"]),
                      ("language_adaptation", dirs["s1"])):
    key = {"image_pretrain": "s0", "visual_adaptation": "s1", "language_adaptation": "s2"}[stage]
    config = _config(f"configs/train/{stage}.py", f"tiny,world={w},init={init},steps=2,batch=8")
    config.checkpoint_every = 0
    train_stage.train_stage(config, dirs[key])
  return w, dirs


def _params(workdir):
  directory, step = checkpoint_params._locate(workdir)  # pylint: disable=protected-access
  tree = checkpoint_params._metadata_tree(directory, step)  # pylint: disable=protected-access
  paths = param_paths.flatten(tree)
  template = jax.tree.map(lambda m: jax.numpy.zeros(m.shape, m.dtype), tree)
  loaded = checkpoint_params.load_params(workdir, template)
  return {k: np.asarray(v) for k, v in param_paths.flatten(loaded).items()}, paths


@pytest.mark.slow
def test_stages_freeze_what_the_paper_freezes(run):
  _, dirs = run
  p0, _ = _params(dirs["s0"])
  p1, _ = _params(dirs["s1"])
  p2, _ = _params(dirs["s2"])
  t5 = [k for k in p0 if k.startswith("t5/")]
  vision = [k for k in p0 if k.startswith(("video_encoder/", "visual_projection/"))]
  assert t5 and vision
  # Stage 1: the language model is exactly the image VLM's; the vision side moved.
  assert all(np.array_equal(p0[k], p1[k]) for k in t5)
  assert any(not np.array_equal(p0[k], p1[k]) for k in vision)
  # Stage 2: the vision side is exactly stage 1's; the language model moved.
  assert all(np.array_equal(p1[k], p2[k]) for k in vision)
  assert any(not np.array_equal(p1[k], p2[k]) for k in t5)


@pytest.mark.slow
def test_caption_pool_then_dual_encoder_then_eval(run):
  from vidistill.caption import captioner as captioner_lib
  from vidistill.caption import job
  from vidistill.data import caption_output
  from vidistill.eval import command as eval_command
  from vidistill.eval.evaluators import common
  w, dirs = run
  # No frames / resolution anywhere: they come from the checkpoint (what the README's chain does).
  config = _config("configs/caption/pseudo_caption.py", "tiny")
  cap = captioner_lib.load_captioner(config, dirs["s2"])
  assert (config.num_frames, config.resolution) == (8, 32)  # the tiny world's clips
  wrong = _config("configs/caption/pseudo_caption.py", "tiny,res=16")
  with pytest.raises(ConfigError, match=r"config.resolution=16 contradicts the caption config "
                                        r".*: resolution 16 px, but the checkpoint was trained at "
                                        r"32 px"):
    captioner_lib.load_captioner(wrong, dirs["s2"])
  # The pool's shards hold its decoded frames, so the job reads those (no video decoding).
  summary = job.run_job(config, cap, os.path.join(w, "shards", "pool-*.tfrecord"),
                        dirs["captions"])
  captions = caption_output.read_captions(dirs["captions"])
  pool_ids = {f"pool-{i:06d}" for i in range(10)}
  assert set(captions) == pool_ids
  assert summary.videos_done == 10 and summary.videos_failed == 0
  assert all(len(c) == len(config.prompts) for c in captions.values())

  de = _config("configs/train/dual_encoder.py", f"tiny,world={w},source=pseudo,steps=2,batch=8")
  de.data.captions_dir = dirs["captions"]
  de.checkpoint_every = 0
  de.eval_config = f"{ROOT}/configs/eval/retrieval.py:tiny,data={w}"  # Periodic eval hook.
  result = train_stage.train_stage(de, dirs["de"])
  assert any(k.startswith("eval/synthetic_test/t2v/R@1") for k in result.history[-1][1])
  assert os.path.exists(os.path.join(dirs["de"], "eval", "2", "results.json"))

  suite = _config("configs/eval/retrieval.py", f"tiny,data={w}")
  model = common.load_model(suite, dirs["de"])
  assert (suite.num_frames, suite.resolution) == (8, 32)
  out = eval_command.run_suite(suite, model, dirs["eval"], checkpoint=dirs["de"])
  flat = [v for v in jax.tree.leaves(out["results"]) if isinstance(v, float)]
  assert flat and all(np.isfinite(flat))
  assert os.path.exists(os.path.join(dirs["eval"], "results.json"))
