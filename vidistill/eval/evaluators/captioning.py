"""Video captioning with a VLM: decode one caption per video, score BLEU-1..4, ROUGE-L, CIDEr-D.

Every record is one video whose captions are the references (MSR-VTT: 20, VATEX: 10). The model
decodes from the frames and one prompt ("caption en:", as the captioning tasks were trained);
scores are corpus-level, coco-caption's (PTB tokenisation, 100x scale; docs/metrics.md). Each
prediction is written, with its references, to `<workdir>/<evaluator>/predictions.jsonl`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

from vidistill.data.annotations import record_id
from vidistill.eval.evaluators import base, common, inputs
from vidistill.eval.metrics import captioning as caption_metrics


@dataclasses.dataclass(frozen=True, kw_only=True)
class CaptioningOptions(common.DataOptions):
  prompt: str = "caption en:"           # The prompt the VLM decodes from.
  tokenize: bool = True                 # coco-caption's PTB tokenisation before scoring.


class CaptioningEvaluator(base.Evaluator):
  """Yields BLEU-1..BLEU-4, ROUGE-L, CIDEr-D, num_videos (and num_failed after skips)."""
  kind = "captioning"
  options_class = CaptioningOptions
  model_protocol = common.VideoTextGenerator

  def run(self, model: common.VideoTextGenerator) -> Iterator[tuple[str, float]]:
    o = self.options
    records = self.load(model, "captions", "captioning metrics need a reference caption per video")

    def call(frames, indices):
      return common.check_texts(model.generate(frames, [o.prompt] * len(indices)), len(indices),
                                f"{self.name} generate")

    predictions, failed = inputs.map_video_batches(
        records, call, options=o, settings=self.settings, batch_size=self.batch_size,
        label=self.name)
    kept = sorted(predictions)
    common.write_predictions(self.output_dir, [
        {"id": record_id(records[i]), "video_id": records[i].video_id,
         "prediction": predictions[i], "references": list(records[i].captions)} for i in kept])
    yield from caption_metrics.caption_metrics(
        [predictions[i] for i in kept], [list(records[i].captions) for i in kept],
        tokenize=o.tokenize).items()
    yield "num_videos", len(kept)
    if failed:
      yield "num_failed", len(failed)
