"""Text-video retrieval with a dual encoder (docs/evaluation.md).

    vidistill eval --config configs/eval/retrieval.py:tiny,data=/tmp/world --checkpoint CKPT \
        --workdir OUT
    vidistill eval --config configs/eval/retrieval.py:paper,data=/data --checkpoint CKPT \
        --workdir OUT --only msrvtt_1ka

Variants: `tiny` / `default` (the synthetic world at `data=`: its held-out test split, in the
MSR-VTT layout), `paper` (MSR-VTT 1k-A and full test, VATEX, under `data=` in the layouts of
docs/datasets.md). Arguments: `data=`, `frames=`, `res=`, `batch=`, `max=`
(vidistill/eval/evaluators/config.py).
"""
import os

import ml_collections

from vidistill.eval.evaluators.config import entry, parse_suite_arg, suite_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_suite_arg("retrieval", arg)
  config = suite_config("retrieval", arg, model_kind="dual_encoder")
  d = arg.data
  # Options of every retrieval entry (vidistill/eval/evaluators/retrieval.py):
  ranking = dict(
      ties="pessimistic",               # A true item tied with others ranks behind them.
      chunk=4096,                       # Keys per block of the streamed search (memory bound).
      query_chunk=1024,                 # Queries per block.
      on_error="raise",                 # An undecodable video stops the run ("skip": left out).
  )
  if arg.variant in ("tiny", "default"):
    world = dict(reader="msrvtt", annotations=os.path.join(d, "annotations", "test_msrvtt.json"),
                 video_root=os.path.join(d, "videos"), reader_options={"split": "test"})
    # Every gold caption of a clip is a query (as MSR-VTT full / VATEX).
    config.evals.synthetic_test = entry(arg, "retrieval", captions="all", **world, **ranking)
    # One query per clip, its canonical caption (as MSR-VTT 1k-A).
    config.evals.synthetic_test_first = entry(arg, "retrieval", captions="first", **world,
                                              **ranking)
  else:
    msrvtt = os.path.join(d, "msrvtt")
    # MSR-VTT 1k-A (JSFusion split): 1,000 videos, one sentence each.
    config.evals.msrvtt_1ka = entry(
        arg, "retrieval", reader="msrvtt_1ka",
        annotations=os.path.join(msrvtt, "MSRVTT_JSFUSION_test.csv"),
        video_root=os.path.join(msrvtt, "videos", "all"), captions="first", **ranking)
    # MSR-VTT full test: 2,990 videos x 20 captions.
    config.evals.msrvtt_full = entry(
        arg, "retrieval", reader="msrvtt", annotations=os.path.join(msrvtt, "MSRVTT_data.json"),
        video_root=os.path.join(msrvtt, "videos", "all"), reader_options={"split": "test"},
        captions="all", **ranking)
    # VATEX validation clips, 10 English captions each.
    config.evals.vatex = entry(
        arg, "retrieval", reader="vatex",
        annotations=os.path.join(d, "vatex", "vatex_validation_v1.0.json"),
        video_root=os.path.join(d, "vatex", "videos"), captions="all", **ranking)
  return config
