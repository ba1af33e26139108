"""Video captioning with the video VLM: BLEU-1..4, ROUGE-L, CIDEr-D (docs/evaluation.md).

    vidistill eval --config configs/eval/captioning.py:tiny,data=/tmp/world --checkpoint CKPT \
        --workdir OUT

Variants: `tiny` / `default` (the synthetic world's test split, gold captions as references),
`paper` (MSR-VTT test, 20 references; VATEX public test, 10). Arguments: `data=`, `frames=`,
`res=`, `batch=`, `max=` (vidistill/eval/evaluators/config.py).
"""
import os

import ml_collections

from vidistill.eval.evaluators.config import entry, parse_suite_arg, suite_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_suite_arg("captioning", arg)
  config = suite_config("captioning", arg, model_kind="vlm")
  config.model.decode = ml_collections.ConfigDict(dict(
      method="greedy",                  # "greedy" or "beam": evaluation decodes deterministically.
      max_decode_len=32 if arg.variant != "paper" else 64,  # Most tokens in a caption.
      beam_size=4,                      # beam: beams kept.
      length_penalty=0.6,               # beam: score / ((5 + len) / 6) ** this (GNMT alpha).
  ))
  d = arg.data
  # Options of every captioning entry (vidistill/eval/evaluators/captioning.py):
  scoring = dict(
      prompt="caption en:",             # The prompt the captioning tasks were trained with.
      tokenize=True,                    # coco-caption's PTB tokenisation before scoring.
      on_error="raise",                 # An undecodable video stops the run ("skip": left out).
  )
  if arg.variant in ("tiny", "default"):
    config.evals.synthetic_test = entry(
        arg, "captioning", reader="msrvtt",
        annotations=os.path.join(d, "annotations", "test_msrvtt.json"),
        video_root=os.path.join(d, "videos"), reader_options={"split": "test"}, **scoring)
  else:
    config.evals.msrvtt = entry(
        arg, "captioning", reader="msrvtt",
        annotations=os.path.join(d, "msrvtt", "MSRVTT_data.json"),
        video_root=os.path.join(d, "msrvtt", "videos", "all"), reader_options={"split": "test"},
        **scoring)
    config.evals.vatex = entry(
        arg, "captioning", reader="vatex",
        annotations=os.path.join(d, "vatex", "vatex_public_test_english_v1.1.json"),
        video_root=os.path.join(d, "vatex", "videos"), **scoring)
  return config
