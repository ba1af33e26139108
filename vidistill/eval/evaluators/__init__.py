"""Evaluators: drive a model over an evaluation split and yield `(metric name, value)` pairs.

    common.py      the model protocols (VideoTextEmbedder, VideoTextGenerator), the `load_model`
                   seam, option parsing, the table of evaluator kinds and `from_config`, the jit
                   cache and mesh helpers.
    config.py      what the suite configs (configs/eval/*.py) share: arguments, sizes, entries.
    inputs.py      annotation records -> decoded frames -> padded (optionally sharded) batches,
                   progress logging.
    retrieval.py   dual encoder: text -> video and video -> text R@k / MdR / MnR.
    captioning.py  VLM: decode captions, BLEU-1..4 / ROUGE-L / CIDEr-D.
    qa.py          VLM: open-ended answers by decoding, multiple choice by candidate log-likelihood.
    zero_shot.py   dual encoder: class names through prompt templates, top-k accuracy.

`vidistill eval` (vidistill/eval/command.py) builds the evaluators of a suite config
(configs/eval/*.py) and writes WORKDIR/results.json and results.md (vidistill/eval/report.py).
docs/evaluation.md describes the suites and the config entries.
"""
