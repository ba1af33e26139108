"""load_examples reads tf.data a batch at a time: the rows must be those of one-by-one reading."""
import numpy as np
import pytest

from vidistill.data.synthetic import world
from vidistill.pipeline import layout
from vidistill.train import stage_input as si


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
  w = str(tmp_path_factory.mktemp("world"))
  world.synth(layout.load_config("data/synthetic.py", "tiny"), w)
  return w


def _one_by_one(data, vocab, model_kind):
  """The reference: every element on its own, padded with 0 to the stage's lengths."""
  task = si.make_task(data, vocab, "reference")
  lengths = dict(data["seq_lengths"])
  rename = si.RENAME[model_kind]
  rows = []
  ds = task.get_dataset(lengths, split="train", shuffle=False, seed=int(data.get("seed", 0)))
  for ex in ds.as_numpy_iterator():
    row = {}
    for k in ("video", "inputs", "targets"):
      if k not in ex or (k == "inputs" and "inputs" not in rename):
        continue
      v = ex[k]
      if k in lengths:
        v = np.pad(v, (0, int(lengths[k]) - len(v)))
      row[rename.get(k, k)] = v
    rows.append(row)
  return rows


@pytest.mark.parametrize("stage,arg,model_kind", [
    ("text_pretrain", "", "vlm"),                          # Generator source, stacked.
    ("visual_adaptation", "", "vlm"),                      # Caption lists (ragged): generator.
    ("language_adaptation", "", "vlm"),                    # Instructions.
    ("dual_encoder", ",source=alt_text", "dual_encoder"),  # Contrastive, no inputs.
])
def test_rows_equal_one_by_one_reading(tiny_world, stage, arg, model_kind):
  config = layout.load_config(f"train/{stage}.py", f"tiny,world={tiny_world}{arg}")
  vocab = si.vocabulary(config.data)
  got = si.load_examples(config.data, vocab, model_kind)
  want = _one_by_one(config.data, vocab, model_kind)
  assert len(got) == len(want) > 0
  for g, w in zip(got, want):
    assert g.keys() == w.keys()
    for k in g:
      np.testing.assert_array_equal(g[k], w[k], err_msg=k)
