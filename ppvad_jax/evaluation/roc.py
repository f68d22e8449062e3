"""ROC AUC without scikit-learn (which is test-only here).

The AUC is the Mann-Whitney U statistic: the probability that a random
positive scores above a random negative, ties counting one half. Computed from
average ranks in O(n log n).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def checked(
    labels: npt.ArrayLike, scores: npt.ArrayLike, *, what: str
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(labels bool [N], scores float64 [N], positives, negatives)``, or a ValueError naming
    what is wrong: shapes that differ, a non-finite score, or a missing class (``what`` needs both)."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    num_pos = int(labels.sum())
    num_neg = labels.size - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError(f"{what} needs both classes: {num_pos} positives, {num_neg} negatives")
    return labels, scores, num_pos, num_neg


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve.

    Args:
      labels: [N] booleans or 0/1, 1 = positive (anomalous).
      scores: [N] floats, higher = more positive. Must be finite.

    Raises:
      ValueError: if there is no positive or no negative, or a score is not finite.
    """
    labels, scores, num_pos, num_neg = checked(labels, scores, what="AUC")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, np.float64)
    # Average rank within each block of tied scores.
    boundaries = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1], True])
    for start, end in zip(boundaries[:-1], boundaries[1:], strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    rank_sum = ranks[labels].sum()
    return float((rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg))
