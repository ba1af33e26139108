"""Evaluation metrics, pure numpy/jax: each public metric returns {name: float}.

- retrieval: text<->video R@1/5/10, MdR, MnR (one or several captions per video).
- similarity: chunked top-k and rank-of-target search that never builds a [Q, K] matrix.
- captioning: BLEU-1..4, ROUGE-L, CIDEr-D as coco-caption computes them.
- coco_tokenizer: coco-caption's PTB tokenisation without Java.
- qa: open-ended and multiple-choice accuracy, per question type.
- classification: zero-shot prompts, prompt ensembling, top-k accuracy.

Scale: every number is as papers print it: recalls and accuracies in percent, captioning scores
100x coco-caption's raw values, ranks as 1-based ranks. docs/metrics.md has the protocols.
"""
