"""A stage's examples as ArrayRecord shards, and the streaming input that trains from them.

    vidistill train --config configs/train/visual_adaptation.py:quick,world=W \
        --write_shards /data/va/train --num_shards 16        # the stage's examples, written once
    vidistill train --config configs/train/visual_adaptation.py:quick,world=W \
        --config.data.shards=/data/va/train --workdir /tmp/va  # streamed, never held whole

A shard record is one example exactly as the in-memory path holds it (frames uint8 [T, H, W, 3]
under "video", token ids padded to data.seq_lengths), so for the same seed both paths give the
same batches (vidistill/data/grain_source.py). `data.in_memory`: True holds the examples in a
list (the synthetic miniature, where decoding once is cheapest), False streams from
`data.shards`, unset streams when `data.shards` is given and holds in memory otherwise.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np

from vidistill.data import grain_source
from vidistill.data import shards
from vidistill.train import stage_input

# Keys of a stage example per model family (stage_input.RENAME's targets, plus the frames).
KEYS = {"vlm": ("video", "prompt_tokens", "target_tokens"), "dual_encoder": ("video", "text_tokens")}


def streams(data: Mapping[str, Any]) -> bool:
  """Whether the stage streams its input (see the module docstring)."""
  in_memory = data.get("in_memory")
  if in_memory is None:
    return bool(data.get("shards"))
  if not in_memory and not data.get("shards"):
    raise stage_input.StageDataError(
        "data.in_memory=False streams from data.shards, which is empty: write the stage's shards "
        "with `vidistill train --config <this config> --write_shards PREFIX`, then pass "
        "--config.data.shards=PREFIX (or --config.data.in_memory=True to hold them in memory)")
  return not in_memory


def write_stage_shards(data: Mapping[str, Any], vocab: Any, model_kind: str, output: str,
                       num_shards: int, *, name: str = "stage") -> tuple[list[str], int]:
  """Writes the stage's examples (stage_input.iter_examples, one at a time) as ArrayRecord shards
  `output-0000i-of-0000n.array_record`; returns the paths and the example count."""
  count = [0]

  def records() -> Iterator[dict[str, Any]]:
    for n, example in enumerate(stage_input.iter_examples(data, vocab, model_kind, name=name)):
      count[0] = n + 1
      yield {"id": f"{n:010d}", **example}

  paths = shards.write_shards(records(), output, num_shards, "arrayrecord")
  if not count[0]:
    raise stage_input.StageDataError(f"the stage's data ({dict(data)}) has no examples")
  return paths, count[0]


def dataset_size(data: Mapping[str, Any], model_kind: str,
                 frames_resolution: tuple[int, int] | None = None) -> int:
  """Examples in data.shards (from the ArrayRecord indices), after checking the first record is
  an example of this stage: the model family's keys, data.seq_lengths, the frames' size."""
  size = grain_source.count_records(data["shards"])
  if not size:
    raise stage_input.StageDataError(f"data.shards={data['shards']!r} holds no examples")
  first = grain_source.open_records(data["shards"])[0]
  want = KEYS[model_kind]
  where = f"data.shards={data['shards']!r}"
  if sorted(first) != sorted(want):
    raise stage_input.StageDataError(
        f"{where} holds examples with {sorted(first)}, but a {model_kind} stage reads "
        f"{sorted(want)}; write shards with this stage's config (--write_shards)")
  rename = stage_input.RENAME[model_kind]
  for key, length in dict(data["seq_lengths"]).items():
    if key in rename and first[rename[key]].shape != (int(length),):
      raise stage_input.StageDataError(
          f"{where}: {rename[key]} has length {first[rename[key]].shape[0]} but "
          f"data.seq_lengths.{key}={length}; write the shards with the same seq_lengths")
  if frames_resolution is not None:
    frames, res = frames_resolution
    if first["video"].shape[:3] != (frames, res, res):
      raise stage_input.StageDataError(
          f"{where}: clips of {first['video'].shape[0]} frames of {first['video'].shape[1]} px, "
          f"but this stage's data gives {frames} frames of {res} px; write the shards with "
          "this stage's config")
  return size


def load_shards(data: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
  """Every example of data.shards in a list (data.in_memory=True with shards given)."""
  rows = grain_source.open_records(data["shards"])
  return [rows[i] for i in range(len(rows))]


def data_fn(data: Mapping[str, Any], *, batch_size: int, seed: int):
  """The trainer's `data(start_step=, process_index=, process_count=)`, reading data.shards."""
  pattern, threads = data["shards"], int(data.get("read_threads", 4))

  def batches(*, start_step: int = 0, process_index: int = 0,
              process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
    return grain_source.batches(
        grain_source.open_records(pattern), batch_size=batch_size, seed=seed,
        start_step=start_step, process_index=process_index, process_count=process_count,
        read_threads=threads)

  return batches
