"""What the captioning job needs from a model: the `Captioner` protocol, and where one is loaded.

The job drives any object with this shape, so it is tested with a deterministic fake and runs
the adapted video VLM (vidistill.models.vlm `predict_batch`) in production through
`load_captioner`, the one seam between the job and the model code.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import ml_collections
import numpy as np


@runtime_checkable
class Captioner(Protocol):
  """Captions a batch of videos for one prompt each.

  Attributes:
    name: the checkpoint id, written into every output row.
    decode_settings: JSON-serialisable decode settings, written into every output row.
  """
  name: str
  decode_settings: dict

  def caption(self, frames: np.ndarray, prompts: list[str],
              rng_seed: int) -> list[list[tuple[str, float]]]:
    """frames: uint8 [B, T, H, W, 3]; prompts: B strings; rng_seed: seeds sampling for the batch.

    Returns, per video, num_samples (caption, log-likelihood) pairs. Greedy and beam decoding
    must not depend on `rng_seed` (nor on the other videos of the batch).
    """
    ...


def count_tokens(captioner: Captioner, text: str) -> int:
  """Tokens in `text` for the tokens/s figure: the captioner's tokenizer when it has one
  (`count_tokens(text) -> int`), else whitespace words."""
  counter = getattr(captioner, "count_tokens", None)
  return int(counter(text)) if callable(counter) else len(text.split())


def load_captioner(config: ml_collections.ConfigDict, checkpoint_dir: str) -> Captioner:
  """The adapted video VLM in `checkpoint_dir`, decoding as `config.decode` says."""
  raise NotImplementedError(
      f"loading a captioner from {checkpoint_dir!r} is not wired yet: the video VLM "
      "(vidistill.models.vlm) and its checkpoint layout are being written. Until then the job runs "
      "only with a Captioner passed to vidistill.caption.job.run_job(captioner=...), as the tests "
      f"do (decode settings asked for: {dict(config.decode)}).")
