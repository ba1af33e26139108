"""seqio tasks for the three kinds of training data, over pluggable sources.

  caption       video -> caption                       (image pretrain, visual adaptation, captioning)
  instruction   video + instruction -> answer          (language adaptation, QA)
  contrastive   (video, caption) pairs                 (the dual encoder)

Every task yields {"video": uint8 [T,H,W,3], "inputs": int32 [Li], "targets": int32 [Lt]} plus
the pass-through text fields "id" (and "inputs_pretokenized"/"targets_pretokenized" as seqio
keeps them). Sources are plain `seqio.DataSource`s: the synthetic world's shards, any example
shards, or annotation records of a real data set decoded from video files.

Nothing is registered on import: `register(task)` adds a task to seqio's registry explicitly, so
what exists is what the caller built.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from vidistill.data import annotations
from vidistill.data import shards
from vidistill.data.records import VideoRecord

VIDEO = "video"
TEXT_FIELDS = ("inputs", "targets")

ExamplesFn = Callable[[str], Iterable[Mapping[str, object]]]


def _video_feature() -> seqio.ContinuousFeature:
  return seqio.ContinuousFeature(dtype=tf.uint8, rank=4, add_eos=False)


def _text_feature(vocab: seqio.Vocabulary) -> seqio.Feature:
  return seqio.Feature(vocabulary=vocab, add_eos=True, dtype=tf.int32, rank=1)


# ---------------------------------------------------------------------------------------- sources


def examples_source(examples_fn: ExamplesFn, splits: Sequence[str], *, num_frames: int,
                    resolution: int, text_keys: Sequence[str],
                    list_keys: Sequence[str] = ()) -> seqio.FunctionDataSource:
  """A source over a Python generator of example dicts.

  `examples_fn(split)` yields dicts with "id" (str), "frames" (uint8 [T,H,W,3] with T=num_frames and
  H=W=resolution), every key of `text_keys` (str) and of `list_keys` (list[str], e.g. several
  captions). Without `list_keys` the whole split is read into memory and sliced; with them the
  generator runs in tf.data's host thread. Either way this is for modest corpora and tests;
  large corpora go through shards.
  """
  signature = {
      "id": tf.TensorSpec([], tf.string),
      "frames": tf.TensorSpec([num_frames, resolution, resolution, 3], tf.uint8),
      **{k: tf.TensorSpec([], tf.string) for k in text_keys},
      **{k: tf.TensorSpec([None], tf.string) for k in list_keys},
  }

  def generate(split: str):
    for ex in examples_fn(split):
      frames = np.asarray(ex["frames"])
      if frames.shape != (num_frames, resolution, resolution, 3) or frames.dtype != np.uint8:
        raise ValueError(f"example {ex.get('id')!r}: frames {frames.dtype}{list(frames.shape)}, "
                         f"expected uint8{[num_frames, resolution, resolution, 3]}")
      out = {"id": str(ex["id"]), "frames": frames}
      out.update({k: str(ex[k]) for k in text_keys})
      out.update({k: [str(s) for s in ex[k]] for k in list_keys})
      yield out

  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del shuffle_files, seed  # Generator order is the source order; the task shuffles examples.
    if list_keys:
      return tf.data.Dataset.from_generator(functools.partial(generate, split),
                                            output_signature=signature)
    # Without ragged fields the examples are stacked and sliced: from_generator costs ~1 ms an
    # element in its Python callback (text_pretrain's 18.6k pairs: ~15 s).
    rows = list(generate(split))
    if not rows:
      return tf.data.Dataset.from_generator(lambda: iter(()), output_signature=signature)
    return tf.data.Dataset.from_tensor_slices(
        {k: np.stack([r[k] for r in rows]) if k == "frames" else [r[k] for r in rows]
         for k in signature})

  return seqio.FunctionDataSource(dataset_fn, splits=list(splits))


def shards_source(patterns: Mapping[str, str | Sequence[str]]) -> seqio.FunctionDataSource:
  """A source over example shards (vidistill/data/shards.py), one file pattern per split.

  The examples keep every field they were written with ("id", "frames", text fields, lists of
  text); a task's `caption_key` names the one it reads. Hosts read disjoint parts of the files
  (seqio passes the shard info through `shuffle_files`/`seed` only, so sharding across hosts is
  the trainer's input pipeline's job).
  """

  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del shuffle_files, seed  # Files are read in order; the task shuffles examples.
    if split not in patterns:
      raise ValueError(f"split {split!r} is not one of the shard source's {sorted(patterns)}")
    return shards.as_tf_dataset(patterns[split])

  return seqio.FunctionDataSource(dataset_fn, splits=list(patterns))


def records_source(records: Mapping[str, Sequence[VideoRecord]], video_root: str, *,
                   num_frames: int, resolution: int) -> seqio.FunctionDataSource:
  """A source decoding the video of each annotation record (any real format's reader output).

  Yields "caption" (the first caption), "captions" (all), "question", "answer" per record; a
  record whose video cannot be decoded is an error naming the file (use the captioning job, not a
  training source, for corpora with broken files).
  """
  from vidistill.data import video_io  # pylint: disable=g-import-not-at-top

  def examples(split: str):
    for rec in records[split]:
      # The resolver knows whether it found the pre-cut clip or the full source video (then the
      # clip's window applies), so the window comes from it, not from the record.
      video = annotations.resolve_video(rec, video_root)
      frames = video_io.read_video(video.path, num_frames, resolution=resolution, window=video.window)
      yield {"id": rec.video_id, "frames": frames,
             "caption": rec.captions[0] if rec.captions else "",
             "captions": list(rec.captions) or [""],
             "question": rec.question or "", "answer": rec.answer or ""}

  return examples_source(examples, list(records), num_frames=num_frames, resolution=resolution,
                         text_keys=("caption", "question", "answer"), list_keys=("captions",))


# ---------------------------------------------------------------------------------- preprocessors


def _pick_text(value: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """A scalar string as is; from a list of strings, one drawn with a stateless seed."""
  if value.shape.rank == 0:
    return value
  index = tf.random.stateless_uniform([], seed, 0, tf.shape(value)[0], dtype=tf.int32)
  return value[index]


def _rename_video(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  # Shards parse frames with a run-time shape; seqio checks the rank statically.
  return {VIDEO: tf.ensure_shape(ex["frames"], [None, None, None, 3]), "id": ex["id"]}


@seqio.map_over_dataset(num_seeds=1)
def _to_caption(ex, seed, *, prompt: str, caption_key: str):
  out = _rename_video(ex)
  out["inputs"] = tf.constant(prompt)
  out["targets"] = _pick_text(ex[caption_key], seed)
  return out


@seqio.map_over_dataset
def _to_instruction(ex, *, instruction_key: str, answer_key: str, prompt_prefix: str):
  out = _rename_video(ex)
  out["inputs"] = tf.strings.join([prompt_prefix, ex[instruction_key]])
  out["targets"] = ex[answer_key]
  return out


@seqio.map_over_dataset(num_seeds=1)
def _to_contrastive(ex, seed, *, caption_key: str):
  out = _rename_video(ex)
  out["targets"] = _pick_text(ex[caption_key], seed)
  return out


def _task(name: str, source: seqio.DataSource, vocab: seqio.Vocabulary, to_example,
          with_inputs: bool = True) -> seqio.Task:
  features = {VIDEO: _video_feature(), "targets": _text_feature(vocab)}
  if with_inputs:
    features["inputs"] = _text_feature(vocab)
  return seqio.Task(
      name, source=source, output_features=features,
      preprocessors=[to_example, seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      shuffle_buffer_size=1024)


def caption_task(name: str, source: seqio.DataSource, vocab: seqio.Vocabulary, *,
                 caption_key: str = "caption", prompt: str = "caption en:") -> seqio.Task:
  """Video -> caption. `caption_key` names a string field or a list of strings (one is drawn)."""
  return _task(name, source, vocab,
               functools.partial(_to_caption, prompt=prompt, caption_key=caption_key))


def instruction_task(name: str, source: seqio.DataSource, vocab: seqio.Vocabulary, *,
                     instruction_key: str = "question", answer_key: str = "answer",
                     prompt_prefix: str = "") -> seqio.Task:
  """Video + instruction -> answer (language adaptation, open-ended QA)."""
  return _task(name, source, vocab, functools.partial(
      _to_instruction, instruction_key=instruction_key, answer_key=answer_key,
      prompt_prefix=prompt_prefix))


def contrastive_task(name: str, source: seqio.DataSource, vocab: seqio.Vocabulary, *,
                     caption_key: str = "caption") -> seqio.Task:
  """(video, caption) pairs for the dual encoder: "video" and the caption tokens in "targets"."""
  return _task(name, source, vocab,
               functools.partial(_to_contrastive, caption_key=caption_key), with_inputs=False)


def register(task: seqio.Task) -> str:
  """Adds `task` to seqio's global registry (replacing a task of the same name); returns the name."""
  seqio.TaskRegistry.remove(task.name)
  seqio.TaskRegistry.add_provider(task.name, task)
  return task.name
