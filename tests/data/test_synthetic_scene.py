"""Scene sampling, distractors and the test split's unique captions."""
import dataclasses
import importlib.util
import os

import numpy as np
import pytest

from vidistill.data.synthetic import captions
from vidistill.data.synthetic import clips
from vidistill.data.synthetic import distractors
from vidistill.data.synthetic import render
from vidistill.data.synthetic import scene as scene_lib
from vidistill.data.synthetic import vocab
from vidistill.data.synthetic.scene import Scene, WorldSpec

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "data", "synthetic.py")


def get_config(arg):
  spec = importlib.util.spec_from_file_location("synthetic_config", CONFIG_FILE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _spec(res=48, frames=16, **kw):
  base = dict(resolution=res, num_frames=frames, shapes=vocab.SHAPES,
              colours=tuple(vocab.COLOURS), sizes=tuple(sorted(vocab.SIZES.items(),
                                                               key=lambda kv: kv[1])),
              actions=vocab.ACTIONS, backgrounds=vocab.BACKGROUNDS, min_objects=1, max_objects=3,
              two_action_prob=0.6)
  base.update(kw)
  return WorldSpec(**base)


def _alone(scene, i):
  return dataclasses.replace(scene, objects=(scene.objects[i],))


def _object_coverage(scene):
  """[N, T, H, W] float: each object rendered alone on a black plain background."""
  dark = dataclasses.replace(scene, background=scene_lib.Background("plain", 20, 0))
  out = []
  for i in range(len(scene.objects)):
    frames = render.render(_alone(dark, i)).astype(int)
    out.append(np.abs(frames - 20).max(-1) > 0)
  return np.stack(out)


@pytest.mark.parametrize("res,frames", [(32, 8), (48, 16)])
def test_sampled_scenes_keep_their_promises(res, frames):
  spec = _spec(res, frames)
  rng = np.random.default_rng(0)
  seen_counts = set()
  for _ in range(150):
    scene = scene_lib.sample_scene(rng, spec)
    objs = scene.objects
    seen_counts.add(len(objs))
    assert 1 <= len(objs) <= 3
    assert len({o.shape for o in objs}) == len(objs) and len({o.colour for o in objs}) == len(objs)
    assert [o.x for o in objs] == sorted(o.x for o in objs)  # Left to right: caption order.
    assert any(e.slot == 0 for o in objs for e in o.events)
    for o in objs:
      actions = [e.action for e in o.events]
      assert [e.slot for e in o.events] in ([0], [1], [0, 1])
      assert len(set(actions)) == len(actions)
      assert "appear" not in actions[1:] and "disappear" not in actions[:-1]
      assert "spin" not in actions or vocab.can_spin(o.shape)
      for e in o.events:
        assert (e.target_colour is not None) == (e.action == "change_colour")
        assert e.target_colour not in {p.colour for p in objs}
    # Pixels: objects inside the frame and apart, at t=0 and in every frame (each rendered alone).
    cover = _object_coverage(scene)
    assert not (cover.sum(0) > 1).any()
    assert not cover[..., 0, :].any() and not cover[..., -1, :].any()
    assert not cover[..., :, 0].any() and not cover[..., :, -1].any()
  assert seen_counts == {1, 2, 3}


def test_scenes_are_deterministic_and_round_trip_through_json():
  spec = _spec()
  a = [scene_lib.sample_scene(np.random.default_rng(5), spec) for _ in range(2)]
  assert a[0] == a[1]
  assert Scene.from_json(a[0].to_json()) == a[0]
  b = scene_lib.sample_scene(np.random.default_rng(6), spec)
  assert b != a[0]


def test_impossible_specs_fail_with_a_clear_error():
  with pytest.raises(scene_lib.InfeasibleSceneError, match="sizes"):
    scene_lib.sample_scene(np.random.default_rng(0), _spec(sizes=(("huge", 0.6),)))


def test_distractors_change_only_motion_or_order():
  spec = _spec(32, 8)
  rng = np.random.default_rng(1)
  kinds = set()
  for _ in range(120):
    base = scene_lib.sample_scene(rng, spec)
    made = distractors.make_distractor(base, rng, spec)
    assert made is not None
    other, kind = made
    kinds.add(kind)
    key = lambda o: (o.shape, o.colour, o.size, o.radius)
    assert sorted(map(key, other.objects)) == sorted(map(key, base.objects))
    assert other.background == base.background
    assert captions.gold_caption(other) != captions.gold_caption(base)
    events = lambda s: {key(o): [(e.action, e.slot) for e in o.events] for o in s.objects}
    assert events(other) != events(base)
    if kind == "swap_order":
      actions = lambda s: sorted(e.action for o in s.objects for e in o.events)
      assert actions(other) == actions(base)
    moved = {key(o): (o.x, o.y) for o in other.objects} != {key(o): (o.x, o.y)
                                                            for o in base.objects}
    if not moved:  # Same start: frames differ only through the changed events.
      assert other.objects != base.objects
  assert kinds == set(distractors.KINDS)


def test_test_split_has_unique_captions_and_real_distractors():
  config = get_config("tiny")
  with config.unlocked():
    config.splits.test = 60
  entries = clips.test_scenes(config)
  assert len(entries) == 60
  all_captions = [c for e in entries for c in captions.gold_captions(e["scene"], 3)]
  assert len(all_captions) == len(set(all_captions))
  ids = [clips.clip_id(config, "test", i) for i in range(60)]
  by_id = dict(zip(ids, entries))
  num_distractors = 0
  for i, e in enumerate(entries):
    if e["distractor_of"] is not None:
      num_distractors += 1
      base = by_id[e["distractor_of"]]
      assert ids.index(e["distractor_of"]) < i and base["distractor_of"] is None
      assert ({(o.shape, o.colour) for o in base["scene"].objects}
              == {(o.shape, o.colour) for o in e["scene"].objects})
  assert 0.3 * 60 <= num_distractors <= 0.7 * 60  # distractor_fraction = 0.5.
  assert clips.test_scenes(config)[7]["scene"] == entries[7]["scene"]  # Deterministic.


def test_clip_seeds_are_independent_of_order():
  config = get_config("tiny")
  alone = clips.clip_scene(config, "pool", 7)
  assert [clips.clip_scene(config, "pool", i) for i in (9, 7)][1] == alone
  assert clips.clip_scene(config, "labeled", 7) != alone
  with config.unlocked():
    config.seed = 1
  assert clips.clip_scene(config, "pool", 7) != alone
