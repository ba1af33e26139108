"""The runner on fake steps: skipping, --only, --from, progress lines, a crash costs one step."""
import json
import os
import threading
import time

import pytest

from vidistill.pipeline import runner
from vidistill.pipeline import timings as timings_lib
from vidistill.pipeline import layout
from vidistill.pipeline import steps as steps_lib


def _config(seeds=1, workers=1):
  # One worker: the fake steps run in this process (a spawned one would not see them).
  config = layout.load_config("pipeline.py", f"quick,seeds={seeds}")
  config.workers = workers
  return config


@pytest.fixture
def fake(monkeypatch):
  calls = []

  def step(name, per_seed=True, fail=None):
    def run(ctx, out):
      if fail is not None and fail[0]:
        fail[0] = False
        raise RuntimeError(f"{name} crashed")
      calls.append((name, ctx.seed))
      with open(os.path.join(out, "out.txt"), "w") as f:
        f.write(name)
      if name == "world":
        open(os.path.join(out, layout.DONE), "w").close()
    return steps_lib.Step(name, run, per_seed=per_seed)

  crash = [False]
  fake_steps = [step("world", per_seed=False), step("a"), step("b", fail=crash), step("c"),
                step("report", per_seed=False)]
  monkeypatch.setattr(steps_lib, "build", lambda config: fake_steps)
  return calls, crash


def test_runs_every_step_then_skips_them(fake, tmp_path):
  calls, _ = fake
  lines = []
  runner.run(_config(), str(tmp_path), seeds=2, log=lines.append)
  assert calls == [("world", 0), ("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 0), ("c", 1),
                   ("report", 0)]
  assert any("ETA" in l and "seed 1 b: running" in l for l in lines)
  done = json.load(open(tmp_path / "seed_1" / "b" / "DONE"))
  assert done["step"] == "b" and done["seconds"] >= 0
  calls.clear()
  lines.clear()
  assert runner.run(_config(), str(tmp_path), seeds=2, log=lines.append) == {}
  assert calls == [] and all("skipped" in l for l in lines)


def test_only_and_from_rerun_the_named_steps(fake, tmp_path):
  calls, _ = fake
  runner.run(_config(), str(tmp_path), log=lambda _: None)
  calls.clear()
  runner.run(_config(), str(tmp_path), only="b", log=lambda _: None)
  assert calls == [("b", 0)]
  calls.clear()
  runner.run(_config(), str(tmp_path), start="c", log=lambda _: None)
  assert calls == [("c", 0), ("report", 0)]


def test_a_crash_costs_one_step(fake, tmp_path):
  calls, crash = fake
  crash[0] = True
  with pytest.raises(RuntimeError, match="b crashed"):
    runner.run(_config(), str(tmp_path), log=lambda _: None)
  assert not layout.is_done(str(tmp_path / "seed_0" / "b"))
  calls.clear()
  runner.run(_config(), str(tmp_path), log=lambda _: None)
  assert calls == [("b", 0), ("c", 0), ("report", 0)]


class _Thread:
  """A launcher handle that runs the step in a thread (the runner's process handle, in small)."""

  def __init__(self, step, ctx, out, log):
    self.code = None

    def target():
      log.append(("start", step.name, ctx.seed))
      try:
        step.run(ctx, out)
        self.code = 0
      except RuntimeError:
        self.code = 1
      log.append(("end", step.name, ctx.seed))

    threading.Thread(target=target, daemon=True).start()

  def poll(self):
    return self.code


def _dag_steps(monkeypatch, fail=()):
  """world -> a -> b, world -> c (slow), report after all: b and c can overlap."""
  running, most = [0], [0]
  lock = threading.Lock()

  def step(name, needs=(), per_seed=True, seconds=0.05):
    def run(ctx, out):
      with lock:
        running[0] += 1
        most[0] = max(most[0], running[0])
      time.sleep(seconds)
      with lock:
        running[0] -= 1
      if name in fail:
        raise RuntimeError(f"{name} crashed")
      if name == "world":
        open(os.path.join(out, layout.DONE), "w").close()
    return steps_lib.Step(name, run, per_seed=per_seed, needs=needs)

  steps = [step("world", per_seed=False), step("a", ("world",)), step("b", ("world", "a")),
           step("c", ("world",), seconds=0.3), step("d", ("world", "b"))]
  steps.append(step("report", tuple(s.name for s in steps), per_seed=False))
  monkeypatch.setattr(steps_lib, "build", lambda config: steps)
  return most


def test_parallel_steps_start_after_what_they_read_and_overlap_up_to_workers(
    monkeypatch, tmp_path):
  most = _dag_steps(monkeypatch)
  log = []
  timings = runner.run(_config(seeds=2, workers=2), str(tmp_path), seeds=2, log=lambda _: None,
                       launch=lambda step, ctx, out: _Thread(step, ctx, out, log))
  assert most[0] == 2  # c (slow) overlapped the a -> b chain; never more than 2.
  when = {(kind, name, seed): i for i, (kind, name, seed) in enumerate(log)}
  for seed in (0, 1):
    assert when[("end", "world", 0)] < when[("start", "a", seed)]
    assert when[("end", "a", seed)] < when[("start", "b", seed)]
    assert when[("end", "b", seed)] < when[("start", "d", seed)]
  assert max(i for (kind, name, _), i in when.items() if kind == "end" and name != "report"
             ) < when[("start", "report", 0)]
  assert len(timings) == 10 and all(layout.is_done(str(tmp_path / f"seed_{s}" / n))
                                    for s in (0, 1) for n in "abcd")
  assert timings_lib.WALL_CLOCK in timings_lib.read(str(tmp_path))


def test_more_seeds_on_a_finished_workdir_run_the_new_seeds_and_redo_the_report(
    monkeypatch, tmp_path):
  _dag_steps(monkeypatch)
  runner.run(_config(workers=2), str(tmp_path), log=lambda _: None,
             launch=lambda step, ctx, out: _Thread(step, ctx, out, []))
  log, lines = [], []
  runner.run(_config(seeds=2, workers=2), str(tmp_path), seeds=2, log=lines.append,
             launch=lambda step, ctx, out: _Thread(step, ctx, out, log))
  ran = {(name, seed) for kind, name, seed in log if kind == "start"}
  assert ran == {("a", 1), ("b", 1), ("c", 1), ("d", 1), ("report", 0)}
  assert any("report: complete, but" in l and "redoing it" in l for l in lines)


def test_a_failed_parallel_step_lets_the_others_finish_then_names_it(monkeypatch, tmp_path):
  _dag_steps(monkeypatch, fail=("a",))
  log = []
  with pytest.raises(layout.PipelineError, match=r"2/6 seed 0 a \(exit code 1\).*rerun"):
    runner.run(_config(workers=2), str(tmp_path), log=lambda _: None,
               launch=lambda step, ctx, out: _Thread(step, ctx, out, log))
  started = {name for kind, name, _ in log if kind == "start"} - {"world"}
  assert "c" in started and not started & {"b", "d", "report"}  # c ran beside a; b never began.
  assert layout.is_done(str(tmp_path / "seed_0" / "c"))
  assert not layout.is_done(str(tmp_path / "seed_0" / "a"))
  # The resume finishes the rest; the wall clock sums both runs.
  first = timings_lib.read(str(tmp_path))[timings_lib.WALL_CLOCK]
  _dag_steps(monkeypatch)
  runner.run(_config(workers=2), str(tmp_path), log=lambda _: None,
             launch=lambda step, ctx, out: _Thread(step, ctx, out, []))
  assert all(layout.is_done(str(tmp_path / "seed_0" / n)) for n in "abcd")
  assert timings_lib.read(str(tmp_path))[timings_lib.WALL_CLOCK] >= first + 0.1  # a, b, d ran.


def test_unknown_step_names_list_the_steps(fake, tmp_path):
  with pytest.raises(layout.PipelineError, match="'bogus' is not a step.*world, a, b"):
    runner.run(_config(), str(tmp_path), only="bogus")
  with pytest.raises(layout.PipelineError, match="not both"):
    runner.run(_config(), str(tmp_path), only="a", start="b")


def test_the_real_step_list_covers_the_method():
  names = runner.step_names(_config())
  for name in ("world", "text_pretrain", "image_pretrain", "visual_adaptation",
               "language_adaptation", "visual_adaptation_lm_unfrozen", "caption_pseudo",
               "caption_frame", "de_alt_text_1", "de_frame_1", "de_pseudo_1", "de_gold_1",
               "de_pseudo_1of2", "de_alt_text_1of2", "eval_image", "eval_visual_language",
               "eval_de_pseudo_1", "report"):
    assert name in names
  assert names[0] == "world" and names[-1] == "report"


@pytest.mark.parametrize("t5,vit", [("", ""), ("mini", ""), ("midi", "mu/8")])
def test_vlm_sizes_reach_every_vlm_stage(monkeypatch, tmp_path, t5, vit):
  """config.vlm replaces the stage variant's model sizes in every VLM stage, and only there."""
  from vidistill.models import t5 as t5_lib
  from vidistill.train import stage as train_stage_lib
  seen = {}
  monkeypatch.setattr(train_stage_lib, "train_stage",
                      lambda config, out: seen.__setitem__(os.path.basename(out), config))
  config = _config()
  config.vlm.t5, config.vlm.vit = t5, vit
  ctx = layout.Context(config, str(tmp_path))
  for stage in layout.VLM_STAGES:
    steps_lib.vlm_stage(stage)(ctx, str(tmp_path / stage))
  steps_lib.visual_adaptation_lm_unfrozen(ctx, str(tmp_path / "unfrozen"))
  steps_lib.dual_encoder("gold", 1.0)(ctx, str(tmp_path / "de"))
  for name in list(layout.VLM_STAGES) + ["unfrozen"]:
    model = seen[name].model
    assert model.t5.variant == (t5 or "tiny") and model.vit.variant == (vit or "nu/16"), name
    t5_lib.decode_variant(model.t5.variant)  # A size the model module knows.
  assert seen["unfrozen"].frozen == ()
  assert "t5" not in seen["de"].model  # The dual encoder keeps its own sizes.


def test_paligemma_lm_reaches_every_vlm_stage(monkeypatch, tmp_path):
  """config.vlm.lm=paligemma: every VLM stage builds the PaliGemma-shaped model, stage 1 freezes
  its Gemma, vlm.gemma sizes it and a T5 size is left out (it has no T5)."""
  from vidistill.config_args import ConfigError
  from vidistill.models import build
  from vidistill.train import stage as train_stage_lib
  seen = {}
  monkeypatch.setattr(train_stage_lib, "train_stage",
                      lambda config, out: seen.__setitem__(os.path.basename(out), config))
  config = _config()
  config.vlm.lm, config.vlm.gemma, config.vlm.t5 = "paligemma", "gemma_tiny", "mini"
  ctx = steps_lib.Context(config, str(tmp_path))
  for stage in steps_lib.VLM_STAGES:
    steps_lib.vlm_stage(stage)(ctx, str(tmp_path / stage))
  steps_lib.visual_adaptation_lm_unfrozen(ctx, str(tmp_path / "unfrozen"))
  for name in list(steps_lib.VLM_STAGES) + ["unfrozen"]:
    model = seen[name].model
    assert model.kind == "paligemma" and model.gemma.variant == "gemma_tiny", name
    assert "t5" not in model and build.family(model.kind) == "vlm"
  assert tuple(seen["visual_adaptation"].frozen) == ("llm/.*",)
  assert seen["unfrozen"].frozen == ()
  config.vlm.lm = "gpt"
  with pytest.raises(ConfigError, match="config.vlm.lm='gpt'"):
    steps_lib.vlm_stage("visual_adaptation")(ctx, str(tmp_path / "x"))


def test_stage_lr_reaches_its_stage_only(monkeypatch, tmp_path):
  """config.stages.<stage>.lr replaces that stage's peak lr (the unfrozen ablation follows stage
  1's); 0 keeps the stage config's; a negative lr is a config error naming it."""
  from vidistill.config_args import ConfigError
  from vidistill.train import stage as train_stage_lib
  seen = {}
  monkeypatch.setattr(train_stage_lib, "train_stage",
                      lambda config, out: seen.__setitem__(os.path.basename(out), config))
  config = _config()
  for stage in layout.VLM_STAGES:
    config.stages[stage].lr = 0.0
  config.stages.visual_adaptation.lr = 0.0123
  ctx = layout.Context(config, str(tmp_path))
  for stage in layout.VLM_STAGES:
    steps_lib.vlm_stage(stage)(ctx, str(tmp_path / stage))
  steps_lib.visual_adaptation_lm_unfrozen(ctx, str(tmp_path / "unfrozen"))
  defaults = {s: layout.load_config(f"train/{s}.py", config.stage_variant).optim.lr
              for s in layout.VLM_STAGES}
  for stage in layout.VLM_STAGES:
    want = 0.0123 if stage == "visual_adaptation" else defaults[stage]
    assert seen[stage].optim.lr == pytest.approx(want), stage
  assert seen["unfrozen"].optim.lr == pytest.approx(0.0123)
  config.stages.language_adaptation.lr = -1.0
  with pytest.raises(ConfigError, match="lr=-1.0"):
    steps_lib.vlm_stage("language_adaptation")(ctx, str(tmp_path / "bad"))


def test_in_process_steps_are_timed(monkeypatch, tmp_path):
  # workers=1 runs each step inside the launch call: its time is the call's, not zero.
  def step(name, per_seed=True):
    def run(ctx, out):
      time.sleep(0.6)
      if name == "world":
        open(os.path.join(out, layout.DONE), "w").close()
    return steps_lib.Step(name, run, per_seed=per_seed)

  monkeypatch.setattr(steps_lib, "build", lambda config: [step("world", per_seed=False),
                                                          step("a")])
  lines = []
  timings = runner.run(_config(), str(tmp_path), log=lines.append)
  assert timings["0/a"] >= 0.6
  assert json.load(open(tmp_path / "seed_0" / "a" / "DONE"))["seconds"] >= 0.6
  assert timings_lib.read(str(tmp_path))["all/world"] >= 0.6
  assert any("seed 0 a: done in 1s" in l for l in lines)
