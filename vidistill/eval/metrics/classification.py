"""Zero-shot video classification with a dual encoder, the CLIP recipe (Radford et al. 2021, 3.1.4).

1. `expand_templates`: every class name through every prompt template ("a video of {}.").
2. Encode the prompts with the text tower (the evaluator's job): [C, P, D].
3. `prompt_ensemble`: L2-normalise each prompt embedding, average over templates, normalise again.
4. `zero_shot_accuracy`: cosine scores of video embeddings against class embeddings -> top-k.

Accuracies are percentages. A label tied with other classes is ranked by the tie policy of
`similarity.TIE_POLICIES` (default "pessimistic": it counts as behind every tied class).
"""
from typing import Dict, List, Sequence

import numpy as np

from vidistill.eval.metrics import similarity

# The default prompt set; CLIP's Kinetics-700 set has 28 more ("a video of a person {}." ...) that a
# config can pass instead.
DEFAULT_TEMPLATES = ("a video of {}.", "a photo of {}.", "a video of a person {}.",
                     "a clip of {}.", "{}")


class ClassificationError(ValueError):
  """Templates, embeddings or labels are malformed."""


def expand_templates(class_names: Sequence[str],
                     templates: Sequence[str] = DEFAULT_TEMPLATES) -> List[List[str]]:
  """Prompts for every class: [C][P] strings, `templates[p]` with "{}" replaced by the name.

  Underscores in class names (Kinetics label files: "playing_guitar") become spaces.
  """
  if not templates:
    raise ClassificationError("no prompt templates given")
  for template in templates:
    if template.count("{}") != 1:
      raise ClassificationError(f"template {template!r} must contain exactly one '{{}}' where "
                                "the class name goes")
  return [[t.replace("{}", name.replace("_", " ")) for t in templates] for name in class_names]


def _normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
  norm = np.linalg.norm(x, axis=axis, keepdims=True)
  if (norm == 0).any():
    raise ClassificationError("an embedding has zero norm and cannot be normalised")
  return x / norm


def prompt_ensemble(prompt_embeddings: np.ndarray) -> np.ndarray:
  """Class embeddings from prompt embeddings: normalise, mean over templates, normalise.

  Args:
    prompt_embeddings: [C, P, D] float, text-tower outputs for `expand_templates`' prompts.

  Returns:
    [C, D] float32, unit L2 norm.
  """
  prompt_embeddings = np.asarray(prompt_embeddings, np.float32)
  if prompt_embeddings.ndim != 3:
    raise ClassificationError(f"prompt_embeddings must be [C, P, D], got shape "
                              f"{prompt_embeddings.shape}")
  return _normalise(_normalise(prompt_embeddings).mean(axis=1))


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5),
                  ties: str = "pessimistic") -> Dict[str, float]:
  """{"top{k}": % of rows whose label ranks within the k best classes}.

  Args:
    scores: [N, C] float, higher = more likely.
    labels: [N] int in [0, C).
    ks: the k values; each must be <= C.
    ties: one of similarity.TIE_POLICIES.
  """
  scores, labels = np.asarray(scores), np.asarray(labels)
  if scores.ndim != 2 or labels.shape != scores.shape[:1]:
    raise ClassificationError(f"scores {scores.shape} and labels {labels.shape} must be [N, C] "
                              "and [N]")
  num_classes = scores.shape[1]
  if not np.issubdtype(labels.dtype, np.integer) or ((labels < 0) | (labels >= num_classes)).any():
    raise ClassificationError(f"labels must be ints in [0, {scores.shape[1]}), got {labels!r}")
  for k in ks:
    if not 1 <= k <= scores.shape[-1]:
      raise ClassificationError(f"top-{k} accuracy needs 1 <= k <= {scores.shape[-1]} classes")
  ranks = similarity.ranks_from_counts(*similarity.dense_target_counts(scores, labels), ties)
  return {f"top{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}


def zero_shot_accuracy(video_embeddings: np.ndarray, class_embeddings: np.ndarray,
                       labels: np.ndarray, ks: Sequence[int] = (1, 5),
                       ties: str = "pessimistic") -> Dict[str, float]:
  """Zero-shot top-k accuracy from video and class embeddings (cosine similarity).

  Args:
    video_embeddings: [N, D] float.
    class_embeddings: [C, D] float, e.g. from `prompt_ensemble`.
    labels: [N] int class indices.
    ks: the k of top-k.
    ties: one of similarity.TIE_POLICIES.

  Returns:
    {"top1": %, "top5": %} (one entry per k).
  """
  videos = _normalise(np.asarray(video_embeddings, np.float32))
  classes = _normalise(np.asarray(class_embeddings, np.float32))
  if videos.shape[1] != classes.shape[1]:
    raise ClassificationError(f"video embeddings have D={videos.shape[1]} but class embeddings "
                              f"D={classes.shape[1]}")
  return topk_accuracy(videos @ classes.T, labels, ks, ties)
