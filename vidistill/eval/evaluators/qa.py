"""Video question answering with a VLM: open-ended by decoding, multiple choice by likelihood.

Each record is one question about a video (videos shared by several questions are decoded once).
  open_ended       (MSRVTT-QA, ActivityNet-QA, NExT-OE): the model decodes an answer from the
                   frames and the prompt; exact match after VQA normalisation against the answer
                   (and NExT-OE's `additional_ref_answer`).
  multiple_choice  (NExT-QA): the model scores every candidate's log-likelihood given the frames
                   and the prompt; the best-scoring one is its pick (no decoding, so no answer
                   outside the candidates). A model scoring all alike gets 0 (`ties="wrong"`).
Per-type accuracies come from a record field (`type_key`), grouped as the benchmark reports them
(`type_groups`). Predictions go to `<workdir>/<evaluator>/predictions.jsonl`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from vidistill.config_args import ConfigError
from vidistill.data.annotations import record_id
from vidistill.data.records import VideoRecord
from vidistill.eval.evaluators import base, common, inputs
from vidistill.eval.metrics import qa as qa_metrics

MODES = ("open_ended", "multiple_choice")
# Question-type names of each benchmark, keyed by the string of the record's type field.
TYPE_GROUPS: dict[str, dict[str, str]] = {
    "nextqa": qa_metrics.NEXTQA_TYPE_GROUPS,
    # MSRVTT-QA's category_id is the question word (msrvtt_qa reader).
    "msrvtt_qa": {"0": "what", "1": "who", "2": "how", "3": "when", "4": "where"},
    # ActivityNet-QA reports motion, spatial and temporal relation, and "free" for types 3-8
    # (yes/no, color, object, location, number, other).
    "activitynet_qa": {"0": "motion", "1": "spatial_relation", "2": "temporal_relation",
                       **{str(t): "free" for t in range(3, 9)}},
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class QAOptions(common.DataOptions):
  mode: str = "open_ended"              # "open_ended" (decode) or "multiple_choice" (score).
  prompt: str = "{question}"            # The prompt; "{question}" is replaced by the question.
  type_key: str = ""                    # Record field holding the question type ("" = none).
  type_groups: str = ""                 # Groups of types: "", "nextqa", "msrvtt_qa",
                                        # "activitynet_qa".
  ties: str = "wrong"                   # Multiple choice, right answer tied at the top:
                                        # "wrong" or "first" (lowest index, as argmax).


class QAEvaluator(base.Evaluator):
  """Yields accuracy, accuracy/<type> and accuracy/<group>, num_questions (and num_failed)."""
  kind = "qa"
  options_class = QAOptions
  model_protocol = common.VideoTextGenerator

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    o = self.options
    self.check_choice("mode", MODES)
    if "{question}" not in o.prompt:
      raise ConfigError(f"{self.where}.prompt={o.prompt!r} must contain '{{question}}'")
    self.check_choice("type_groups", ("", *TYPE_GROUPS))
    if o.type_groups and not o.type_key:
      raise ConfigError(f"{self.where}.type_groups={o.type_groups!r} needs type_key (the record "
                        "field holding the type, e.g. 'type' for NExT-QA)")
    self.check_choice("ties", qa_metrics.MC_TIE_POLICIES)

  def _check(self, records: list[VideoRecord]) -> None:
    o = self.options
    for r in records:
      if o.mode == "open_ended" and not r.answer:
        raise common.EvalDataError(
            f"{self.where}: record {record_id(r)!r} of {o.annotations!r} has no answer")
      if o.mode == "multiple_choice" and (r.answer_index is None or
                                          len(r.candidates) != len(records[0].candidates)):
        raise common.EvalDataError(
            f"{self.where}: record {record_id(r)!r} has {len(r.candidates)} candidates (answer "
            f"index {r.answer_index}); mode='multiple_choice' needs the same number of "
            "candidates for every question and the right one's index (NExT-QA a0..a4); use "
            "mode='open_ended' for open-ended files")
      if o.type_key and r.extra.get(o.type_key) is None:
        raise common.EvalDataError(
            f"{self.where}: record {record_id(r)!r} has no {o.type_key!r} field (type_key); "
            f"its fields: {sorted(r.extra)}")

  def run(self, model: common.VideoTextGenerator) -> Iterator[tuple[str, float]]:
    o = self.options
    records = self.load(model, "question", "is this a QA file?")
    self._check(records)
    prompts = [o.prompt.replace("{question}", r.question) for r in records]
    if o.mode == "open_ended":
      def call(frames, indices):
        return common.check_texts(model.generate(frames, [prompts[i] for i in indices]),
                                  len(indices), f"{self.name} generate")
    else:
      def call(frames, indices):
        candidates = [list(records[i].candidates) for i in indices]
        scores = common.to_host(model.score(frames, [prompts[i] for i in indices], candidates))
        expected = (len(indices), len(candidates[0]))
        if scores.shape != expected:
          raise common.EvalDataError(f"{self.name} score: the model returned scores of shape "
                                     f"{scores.shape}; expected {expected}")
        return scores.astype(np.float64)

    outputs, failed = inputs.map_video_batches(
        records, call, options=o, settings=self.settings, batch_size=self.batch_size,
        label=self.name)
    kept = sorted(outputs)
    kept_records = [records[i] for i in kept]
    types = [str(r.extra[o.type_key]) for r in kept_records] if o.type_key else None
    groups = TYPE_GROUPS[o.type_groups] if o.type_groups else None
    if o.mode == "open_ended":
      answers = [_accepted(r) for r in kept_records]
      metrics = qa_metrics.open_ended_accuracy([outputs[i] for i in kept], answers, types, groups)
    else:
      scores = np.stack([outputs[i] for i in kept])
      answer_index = np.array([r.answer_index for r in kept_records])
      metrics = qa_metrics.multiple_choice_accuracy(scores, answer_index, types, groups, o.ties)
    common.write_predictions(self.output_dir, [
        _prediction_row(r, prompts[i], outputs[i]) for i, r in zip(kept, kept_records)])
    yield from metrics.items()
    yield "num_questions", len(kept)
    if failed:
      yield "num_failed", len(failed)


def _accepted(record: VideoRecord) -> list[str]:
  extra = record.extra.get("additional_ref_answer")
  return [record.answer] + ([extra] if extra else [])


def _prediction_row(record: VideoRecord, prompt: str, output: Any) -> dict[str, Any]:
  row = {"id": record_id(record), "video_id": record.video_id, "prompt": prompt,
         "answer": record.answer}
  if isinstance(output, str):
    row["prediction"] = output
  else:
    row["scores"] = [float(s) for s in output]
    row["prediction"] = record.candidates[int(np.argmax(output))]
  return row
