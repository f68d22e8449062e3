"""Frame-level AUC, ROC curves and the video-level F1 (paper, section 5.1.2).

- FL-AUC: ROC AUC over every test frame of every video pooled together.
- VL-F1: a video is predicted anomalous when its sigmoidal anomaly score exceeds
  0.5 (strictly) at any frame; F1 over videos, with precision and recall.

Frame labels arrive as the dataset's three classes (normal, soft, hard anomaly).
The paper scores the test set with soft anomalies counted as normal (section
4.3.3: "frames with soft anomalies are considered normal"), so that is the
default of ``frame_positives``. A video is anomalous when it has any soft or hard
frame, i.e. it comes from an anomalous class (normal videos are all normal).

Host-side numpy: these run once per evaluation over at most millions of frames;
sorting dominates, O(N log N).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ppvad_jax.data.ucf_layout import HARD, NORMAL, SOFT
from ppvad_jax.evaluation import roc


def frame_positives(labels: npt.ArrayLike, *, soft_is_anomalous: bool = False) -> np.ndarray:
    """Binary frame labels from {NORMAL, SOFT, HARD}: HARD is positive, SOFT only if asked."""
    labels = np.asarray(labels)
    unknown = ~np.isin(labels, (NORMAL, SOFT, HARD))
    if unknown.any():
        raise ValueError(f"frame labels must be in {(NORMAL, SOFT, HARD)}, got {np.unique(labels[unknown])}")
    return (labels == HARD) | (soft_is_anomalous & (labels == SOFT))


def video_is_anomalous(frame_labels_per_video: Iterable[npt.ArrayLike]) -> np.ndarray:
    """[V] bools: a video is anomalous if any of its frames is a soft or hard anomaly."""
    return np.array([bool(np.any(np.asarray(labels) != NORMAL)) for labels in frame_labels_per_video])


def _pool(per_video):
    """Concatenate a list of per-video arrays (ragged allowed), or flatten one array."""
    if isinstance(per_video, list | tuple):
        return np.concatenate([np.ravel(np.asarray(v)) for v in per_video]) if per_video else np.zeros(0)
    return np.ravel(np.asarray(per_video))


def frame_level_auc(
    labels: npt.ArrayLike | Sequence[npt.ArrayLike], scores: npt.ArrayLike | Sequence[npt.ArrayLike]
) -> float:
    """FL-AUC: ROC AUC over all frames pooled (lists of per-video arrays, or arrays).

    Args:
      labels: binary per-frame labels (see ``frame_positives``), 1 = anomalous.
      scores: per-frame scores, same layout; higher = more anomalous.
    """
    return roc.roc_auc(_pool(labels), _pool(scores))


def roc_curve(
    labels: npt.ArrayLike | Sequence[npt.ArrayLike],
    scores: npt.ArrayLike | Sequence[npt.ArrayLike],
    *,
    drop_intermediate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points, as ``sklearn.metrics.roc_curve`` gives them.

    One point per distinct score (the threshold: predict positive when score >=
    it), from the strictest; the first threshold is +inf, the point (0, 0).
    ``drop_intermediate`` drops points collinear with their neighbours (a run of
    thresholds that adds only positives or only negatives), which keeps a curve of
    millions of frames plottable without changing its shape or area.

    Returns:
      fpr, tpr, thresholds: 1-D arrays, fpr and tpr non-decreasing.
    """
    labels, scores, num_pos, num_neg = roc.checked(_pool(labels), _pool(scores), what="a ROC curve")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # The last index of each block of equal scores: every frame above it is predicted positive.
    last = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), scores.size - 1]
    true_pos = np.cumsum(sorted_labels)[last]
    false_pos = (last + 1) - true_pos
    thresholds = sorted_scores[last]
    if drop_intermediate and true_pos.size > 2:
        # A point is kept where the slope changes (second differences not both zero).
        keep = np.r_[True, (np.diff(false_pos, 2) != 0) | (np.diff(true_pos, 2) != 0), True]
        true_pos, false_pos, thresholds = true_pos[keep], false_pos[keep], thresholds[keep]
    true_pos = np.r_[0, true_pos]
    false_pos = np.r_[0, false_pos]
    thresholds = np.r_[np.inf, thresholds]
    return false_pos / num_neg, true_pos / num_pos, thresholds


def video_predictions(scores_per_video: Iterable[npt.ArrayLike], *, threshold: float = 0.5) -> np.ndarray:
    """[V] bools: video v is predicted anomalous if any frame's score exceeds ``threshold``.

    Args:
      scores_per_video: a list of 1-D per-video score arrays (ragged allowed), or [V, T].
        Pass padded videos as a list of their real frames: a padded frame can exceed
        the threshold too.
      threshold: strict: the paper's "exceeds 0.5".
    """
    return np.array([bool(np.any(np.asarray(s) > threshold)) for s in scores_per_video])


def video_level_f1(
    video_labels: npt.ArrayLike, scores_per_video: Iterable[npt.ArrayLike], *, threshold: float = 0.5
) -> dict[str, float | int]:
    """VL-F1 with its precision and recall.

    Conventions (as ``sklearn.metrics`` with ``zero_division=0``): precision is 0
    when no video is predicted anomalous, recall is 0 when none is anomalous, and
    F1 = 2 TP / (2 TP + FP + FN) is 0 when that denominator is 0.

    Args:
      video_labels: [V] bools, True = anomalous video (see ``video_is_anomalous``).
      scores_per_video: per-video sigmoidal anomaly scores (see ``video_predictions``).
      threshold: the SAS level a video must exceed somewhere to count as anomalous.

    Returns:
      dict with f1, precision, recall (floats) and tp, fp, fn, tn (ints).
    """
    truth = np.asarray(video_labels).astype(bool).ravel()
    predicted = video_predictions(scores_per_video, threshold=threshold)
    if truth.shape != predicted.shape:
        raise ValueError(f"{truth.size} video labels for {predicted.size} videos of scores")
    tp = int(np.sum(truth & predicted))
    fp = int(np.sum(~truth & predicted))
    fn = int(np.sum(truth & ~predicted))
    tn = int(np.sum(~truth & ~predicted))
    return {
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }  # fmt: skip
