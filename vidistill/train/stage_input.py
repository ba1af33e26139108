"""What a stage trains on: its config's `data` section -> seqio task -> the trainer's batches.

    data.source = "world"         a split of the synthetic world (shards + truth), text from
                                  data.caption_key ("short_caption", "gold_captions", "alt_text",
                                  "caption" ...), or from data.captions_dir (the pseudo-captioning
                                  job's output) when it is set
    data.source = "annotations"   a real data set: data.reader (annotations.READERS name),
                                  data.annotations (file), data.video_root
    data.source = "clips"         clips already decoded into shards by `vidistill data convert`
                                  (frames + captions / question + answer): data.clips, its prefix
    data.source = "text"          text only (the language model's pre-training, as UL2's): every
                                  sentence of the world's splits data.text_splits, each after the
                                  prompt it answers, and every caption again after a corrupted
                                  copy of itself (data.denoise), over one blank frame; at most
                                  data.max_examples of them (a seeded subset; 0 = all)
    data.kind   = "caption" | "instruction" | "contrastive"

Instruction data is synthesised here, from the world's event lists (vidistill/data/instructions.py),
`data.instructions_per_video` per clip with the stage's seed. The seqio task does the tokenising;
its examples are then held in memory (data.in_memory, the CPU-scale default), which makes resume
O(1) and the global batch independent of the number of processes (vidistill/train/input.py), or
written once as ArrayRecord shards and streamed from them (vidistill/train/streaming.py).
"""
from __future__ import annotations

import functools
import itertools
import json
import os
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from vidistill import fs
from vidistill.data import caption_output
from vidistill.data import instructions
from vidistill.data import shards
from vidistill.data import tasks
from vidistill.data import vocab as vocab_lib
from vidistill.train import input as input_lib

KINDS = ("caption", "instruction", "contrastive")
_READ_ROWS = 256  # Examples per tf.data read in load_examples.
CAPTION_PROMPT = "caption en:"
# seqio's feature names -> the model's batch keys.
RENAME = {"vlm": {"inputs": "prompt_tokens", "targets": "target_tokens"},
          "dual_encoder": {"targets": "text_tokens"}}


class StageDataError(ValueError):
  """The data section of a stage config names something that is not there."""


def vocabulary(data: Mapping[str, Any]):
  path = data.get("vocab") or os.path.join(data["world"], "vocab.model")
  return vocab_lib.load_vocabulary(path)


def world_info(world_dir: str) -> dict[str, Any]:
  path = os.path.join(world_dir, "world.json")
  if not fs.exists(path):
    raise StageDataError(f"data.world={world_dir!r} is not a synthetic world (no world.json); make "
                         "one with `vidistill data synth --config configs/data/synthetic.py "
                         f"--workdir {world_dir}`")
  with fs.open(path, encoding="utf-8") as f:
    return json.load(f)


def _truth(world_dir: str, split: str) -> dict[str, dict[str, Any]]:
  with fs.open(os.path.join(world_dir, "truth", f"{split}.jsonl"), encoding="utf-8") as f:
    return {r["id"]: r for r in map(json.loads, f)}


def _split_shards(world_dir: str, split: str) -> list[str]:
  paths = sorted(fs.glob(os.path.join(world_dir, "shards", f"{split}-*.tfrecord")))
  if not paths:
    raise StageDataError(f"no shards of split {split!r} in {world_dir}/shards; the world's splits "
                         f"are {sorted(world_info(world_dir)['splits'])}")
  return paths


def select_fraction(ids: list[str], fraction: float, seed: int) -> set[str]:
  """A seeded subset of `ids`; smaller fractions are subsets of larger ones (nested pools)."""
  if not 0 < fraction <= 1:
    raise StageDataError(f"data.fraction={fraction} must be in (0, 1]")
  order = np.random.default_rng(seed).permutation(len(ids))
  keep = max(1, int(round(fraction * len(ids))))
  return {ids[i] for i in sorted(order[:keep])}


def _world_examples(data: Mapping[str, Any], texts: Mapping[str, list[str]] | None
                    ) -> Callable[[str], Iterator[dict[str, Any]]]:
  """examples_fn(split) over the world's shards: frames + the stage's text fields."""
  world_dir, split = data["world"], data["split"]
  key = data.get("caption_key") or "caption"
  fraction = float(data.get("fraction", 1.0))
  truth = _truth(world_dir, split)
  keep = select_fraction(sorted(truth), fraction, int(data.get("fraction_seed", 0)))
  synth = instructions.TemplateSynthesizer(per_video=int(data.get("instructions_per_video", 4)))

  def examples(_: str) -> Iterator[dict[str, Any]]:
    for index, ex in enumerate(shards.read_shards(_split_shards(world_dir, split))):
      vid = ex["id"]
      if vid not in keep:
        continue
      frames = ex["frames"]
      if data["kind"] == "instruction":
        events = instructions.events_from_synthetic(truth[vid]["events"])
        rng = np.random.default_rng([int(data.get("seed", 0)), index])
        for ins in synth(events, rng):
          yield {"id": vid, "frames": frames, "question": ins.instruction, "answer": ins.answer}
        continue
      if texts is not None:
        captions = texts.get(vid)
        if not captions:
          continue  # A clip the captioning job failed on: left out, as a data set would.
      else:
        value = ex.get(key, truth[vid].get(key))
        if value is None:
          raise StageDataError(f"clip {vid!r} of split {split!r} has no field "
                               f"data.caption_key={key!r}; it has {sorted(truth[vid])}")
        captions = [value] if isinstance(value, str) else list(value)
      yield {"id": vid, "frames": frames, "captions": captions}

  return examples


def text_pairs(record: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
  """(prompt, sentence) pairs of one truth record: what the decoder must learn to say, after what.

  Captions follow the captioning prompts, answers their question, instruction answers their
  instruction, so the frozen LM of stage 1 already knows every style and motion word.
  """
  for key in ("caption", "gold_caption", "short_caption", "alt_text", "narrative"):
    if record.get(key):
      yield CAPTION_PROMPT, record[key]
  for key in ("gold_captions", "frame_captions"):
    for text in record.get(key) or ():
      yield CAPTION_PROMPT, text
  for q in record.get("questions") or ():
    if q.get("answer"):
      yield q["question"], str(q["answer"])
  if record.get("events"):
    for ins in instructions.template_instructions(
        instructions.events_from_synthetic(record["events"])):
      yield ins.instruction, ins.answer


def corrupt(text: str, rng: np.random.Generator, *, keep: float, window: float) -> str:
  """Words dropped (each kept with probability `keep`, at least one) and shuffled locally (each
  moves up to `window` places): the denoising input of a caption."""
  words = text.split()
  kept = [w for w in words if rng.random() < keep] or [words[int(rng.integers(len(words)))]]
  order = np.argsort(np.arange(len(kept)) + rng.uniform(0.0, window, len(kept)), kind="stable")
  return " ".join(kept[i] for i in order)


def denoise_pairs(record_id: str, record: Mapping[str, Any], *, keep: float, window: float,
                  seed: int) -> Iterator[tuple[str, str]]:
  """(corrupted caption + prompt, caption) for every caption-kind sentence of a record.

  Why: UL2 was pre-trained to rebuild text from a corrupted copy in its encoder, so its decoder
  says what its encoder holds. A decoder trained only to write captions after a prompt has never
  let encoder content choose its words, and with it frozen, visual adaptation cannot steer it to
  motion (docs/experiments.md). The corrupted copy sits before the prompt, where the visual
  tokens will be.
  """
  rng = np.random.default_rng([seed, *record_id.encode()])
  for key in ("caption", "gold_caption", "short_caption", "gold_captions", "frame_captions"):
    value = record.get(key)
    for text in ([value] if isinstance(value, str) else value or ()):
      yield f"{corrupt(text, rng, keep=keep, window=window)} {CAPTION_PROMPT}", text


def _text_examples(data: Mapping[str, Any], resolution: int
                   ) -> Callable[[str], Iterator[dict[str, Any]]]:
  """examples_fn(split) of the text-only source: one blank frame, a prompt and a sentence."""
  splits = [s.strip() for s in str(data.get("text_splits") or "").split(",") if s.strip()]
  if not splits:
    raise StageDataError("data.source='text' needs data.text_splits, e.g. 'image_text,labeled'")
  blank = np.zeros((1, resolution, resolution, 3), np.uint8)
  denoise = dict(data.get("denoise") or {})
  if denoise and not 0.0 < float(denoise.get("keep", 0)) <= 1.0:
    raise StageDataError(f"data.denoise.keep={denoise.get('keep')!r} must be in (0, 1]: the "
                         "probability that a caption word stays in its corrupted copy")

  limit = int(data.get("max_examples", 0))
  if limit < 0:
    raise StageDataError(f"data.max_examples={limit} is negative; 0 reads every pair")

  def examples(_: str) -> Iterator[dict[str, Any]]:
    rows = []
    for split in splits:
      for vid, record in _truth(data["world"], split).items():
        pairs = text_pairs(record)
        if denoise:
          pairs = itertools.chain(pairs, denoise_pairs(
              vid, record, keep=float(denoise["keep"]), window=float(denoise["window"]),
              seed=int(data.get("seed", 0))))
        # dict.fromkeys: repeated pairs (a static object's frame captions) are kept once.
        rows.extend((f"{vid}:{i}", prompt, text)
                    for i, (prompt, text) in enumerate(dict.fromkeys(pairs)))
    if limit and len(rows) > limit:
      # Tokenising is the cost here (seqio, ~1 ms a pair): a short run reads a random subset.
      keep = np.random.default_rng(int(data.get("seed", 0))).choice(len(rows), limit,
                                                                     replace=False)
      rows = [rows[i] for i in np.sort(keep)]
    for eid, prompt, text in rows:
      yield {"id": eid, "frames": blank, "question": prompt, "answer": text}

  return examples


def make_task(data: Mapping[str, Any], vocab: Any, name: str):
  """The stage's seqio task (not registered: nothing global changes)."""
  kind = data["kind"]
  if kind not in KINDS:
    raise StageDataError(f"data.kind={kind!r} is not one of {KINDS}")
  if data.get("source", "world") == "text":
    info = world_info(data["world"])["config"]
    source = tasks.examples_source(_text_examples(data, info["resolution"]), ["train"],
                                   num_frames=1, resolution=info["resolution"],
                                   text_keys=("question", "answer"))
    return tasks.instruction_task(name, source, vocab)
  if data.get("source", "world") == "clips":
    if not data.get("clips"):
      raise StageDataError("data.source='clips' needs data.clips: the --output prefix (or a glob) "
                           "of `vidistill data convert`")
    source = tasks.shards_source({"train": data["clips"]})
    list_key = "captions"
  elif data.get("source", "world") == "annotations":
    from vidistill.data import annotations  # pylint: disable=g-import-not-at-top
    records = annotations.READERS[data["reader"]](data["annotations"])
    source = tasks.records_source({"train": records}, data["video_root"],
                                  num_frames=int(data["num_frames"]),
                                  resolution=int(data["resolution"]))
    list_key = "captions"
  else:
    info = world_info(data["world"])["config"]
    texts = None
    if data.get("captions_dir"):
      texts = caption_output.read_captions(data["captions_dir"], data.get("captions_prompt") or None)
      if not texts:
        raise StageDataError(f"data.captions_dir={data['captions_dir']!r} holds no captions")
    frames = 1 if data["split"] == "image_text" else info["num_frames"]
    if kind == "instruction":
      source = tasks.examples_source(_world_examples(data, None), ["train"], num_frames=frames,
                                     resolution=info["resolution"],
                                     text_keys=("question", "answer"))
    else:
      source = tasks.examples_source(_world_examples(data, texts), ["train"], num_frames=frames,
                                     resolution=info["resolution"], text_keys=(),
                                     list_keys=("captions",))
    list_key = "captions"
  if kind == "caption":
    return tasks.caption_task(name, source, vocab, caption_key=list_key,
                              prompt=data.get("prompt", "caption en:"))
  if kind == "instruction":
    return tasks.instruction_task(name, source, vocab)
  return tasks.contrastive_task(name, source, vocab, caption_key=list_key)


def iter_examples(data: Mapping[str, Any], vocab: Any, model_kind: str, *,
                  name: str = "stage") -> Iterator[dict[str, np.ndarray]]:
  """Every example of the stage's task in order, tokenised, keys renamed for the model, strings
  dropped, text padded to data.seq_lengths: what the trainer's batches are stacked from."""
  passes = int(data.get("passes", 1))
  if passes < 1:
    raise StageDataError(f"data.passes={passes} must be >= 1 (caption draws per clip)")
  task = make_task(data, vocab, name)
  lengths = dict(data["seq_lengths"])
  rename = RENAME[model_kind]
  # Each clip's caption is drawn once per pass from its list, so `passes` > 1 keeps several.
  for _ in range(passes):
    ds = task.get_dataset(lengths, split="train", shuffle=False, seed=int(data.get("seed", 0)))
    keys = [k for k in ("video", "inputs", "targets")
            if k in ds.element_spec and (k != "inputs" or "inputs" in rename)]
    # Rows come out of tf.data a batch at a time, padded with 0 to the stage's lengths as the
    # trainer's batches are: element by element cost ~2 ms each in tf.data's Python iterator
    # (text_pretrain's 18.6k pairs: 49 s of a 173 s step).
    shapes = {k: [int(lengths[k])] if k in lengths else ds.element_spec[k].shape for k in keys}
    ds = ds.map(lambda ex, keys=tuple(keys): {k: ex[k] for k in keys})
    for batch in ds.padded_batch(_READ_ROWS, padded_shapes=shapes).as_numpy_iterator():
      for i in range(len(batch[keys[0]])):
        yield {rename.get(k, k): batch[k][i] for k in keys}


def load_examples(data: Mapping[str, Any], vocab: Any, model_kind: str, *,
                  name: str = "stage") -> list[dict[str, np.ndarray]]:
  """`iter_examples` held in a list (data.in_memory)."""
  out = list(iter_examples(data, vocab, model_kind, name=name))
  if not out:
    raise StageDataError(f"the stage's data ({dict(data)}) has no examples")
  return out


def data_fn(data: Mapping[str, Any], examples: list[dict[str, np.ndarray]], *, batch_size: int,
            seed: int, model_kind: str):
  """The trainer's `data(start_step=, process_index=, process_count=)`."""
  rename = RENAME[model_kind]
  lengths = {rename.get(k, k): v for k, v in dict(data["seq_lengths"]).items()
             if k in rename}
  return functools.partial(input_lib.batches, examples, batch_size=batch_size,
                           seq_lengths=lengths, seed=seed)
