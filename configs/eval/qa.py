"""Video question answering with the video VLM: open-ended and multiple choice (docs/evaluation.md).

    vidistill eval --config configs/eval/qa.py:tiny,data=/tmp/world --checkpoint CKPT --workdir OUT

Variants: `tiny` / `default` (the synthetic world's QA split: NExT-QA-layout multiple choice and
MSRVTT-QA-layout open-ended questions), `paper` (MSRVTT-QA, ActivityNet-QA, NExT-OE open-ended;
NExT-QA multiple choice). Arguments: `data=`, `frames=`, `res=`, `batch=`, `max=`
(vidistill/eval/evaluators/config.py).
"""
import os

import ml_collections

from vidistill.eval.evaluators.config import entry, parse_suite_arg, suite_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_suite_arg("qa", arg)
  config = suite_config("qa", arg, model_kind="vlm")
  config.model.decode = ml_collections.ConfigDict(dict(
      method="greedy",                  # "greedy" or "beam": evaluation decodes deterministically.
      max_decode_len=16,                # Most tokens in an open-ended answer.
      beam_size=4,                      # beam: beams kept.
      length_penalty=0.6,               # beam: score / ((5 + len) / 6) ** this (GNMT alpha).
  ))
  d = arg.data
  # Options shared by the entries (vidistill/eval/evaluators/qa.py):
  shared = dict(
      prompt="{question}",              # The prompt; instruction tuning used the bare question.
      on_error="raise",                 # An undecodable video stops the run ("skip": left out).
  )
  # Multiple choice: each candidate's log-likelihood; the right one must win outright.
  mc = dict(mode="multiple_choice", ties="wrong", **shared)
  open_ended = dict(mode="open_ended", **shared)  # Decoded answer, exact match after normalising.
  if arg.variant in ("tiny", "default"):
    ann = os.path.join(d, "annotations")
    config.evals.synthetic_nextqa_mc = entry(
        arg, "qa", reader="nextqa", annotations=os.path.join(ann, "qa_nextqa.csv"),
        video_root=os.path.join(d, "videos"), type_key="type", type_groups="nextqa", **mc)
    config.evals.synthetic_msrvtt_qa = entry(
        arg, "qa", reader="msrvtt_qa", annotations=os.path.join(ann, "qa_msrvtt_qa.json"),
        video_root=os.path.join(d, "videos", "qa"), type_key="category_id",
        type_groups="msrvtt_qa", **open_ended)
  else:
    config.evals.msrvtt_qa = entry(
        arg, "qa", reader="msrvtt_qa", annotations=os.path.join(d, "msrvtt_qa", "test_qa.json"),
        video_root=os.path.join(d, "msrvtt", "videos", "all"), type_key="category_id",
        type_groups="msrvtt_qa", **open_ended)
    config.evals.activitynet_qa = entry(
        arg, "qa", reader="activitynet_qa",
        annotations=os.path.join(d, "activitynet_qa", "test_q.json"),
        video_root=os.path.join(d, "activitynet", "videos"), type_key="type",
        type_groups="activitynet_qa", **open_ended)
    nextqa_map = {"video_map": os.path.join(d, "nextqa", "map_vid_vidorID.json")}
    config.evals.nextqa_oe = entry(
        arg, "qa", reader="nextqa", annotations=os.path.join(d, "nextoe", "val.csv"),
        video_root=os.path.join(d, "NExTVideo"), reader_options=nextqa_map, type_key="type",
        type_groups="nextqa", **open_ended)
    config.evals.nextqa_mc = entry(
        arg, "qa", reader="nextqa", annotations=os.path.join(d, "nextqa", "val.csv"),
        video_root=os.path.join(d, "NExTVideo"), reader_options=nextqa_map, type_key="type",
        type_groups="nextqa", **mc)
  return config
