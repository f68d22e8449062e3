"""Motion energy, the baseline every classifier must beat, scored the way the classifier is.

A frame's motion energy is the mean flow magnitude between it and the frame
1/10 s before (the third channel of the cached flow image). As a raw number it
has no scale that the sigmoidal anomaly score's ``tau = 0.5`` means anything
for, so it is calibrated into a confidence by a one-feature logistic
regression fitted on the *validation* split (hard anomalies against the rest,
classes balanced: with the classifier's 1:2 weights the fitted confidence never
reached 0.5 on the demo world, so the baseline could never alert and its VL-F1
of 0 would say nothing): a monotone map, so its FL-AUC is the raw energy's, and
then SAS and VL-F1 are computed on test exactly as for the classifier. Fitting
on test would let the baseline see its answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

HARD = 2  # the classifier inputs' label of a hard anomaly (0 normal, 1 soft)


def energy(flows: npt.ArrayLike) -> np.ndarray:
    """Mean flow magnitude per frame of cached flow images ``[N, H, W, 3]`` (magnitude last)."""
    flows = np.asarray(flows)
    return flows[..., 2].reshape(len(flows), -1).astype(np.float64).mean(axis=1)


def fit_logistic(
    x: npt.ArrayLike, y: npt.ArrayLike, *, positive_weight: float | None = None, steps: int = 50
) -> tuple[float, float]:
    """``(a, b)`` of ``sigmoid(a * x + b)`` by Newton's method on the weighted log-loss of the
    standardised x (a tiny ridge keeps it finite when the classes separate). ``positive_weight``
    None: balanced (negatives / positives)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, bool).astype(np.float64)
    if y.all() or not y.any():
        raise ValueError(f"calibration needs both classes: {int(y.sum())} hard of {y.size} frames")
    if positive_weight is None:
        positive_weight = float((y == 0).sum() / y.sum())
    mean, scale = x.mean(), x.std() or 1.0
    z = np.stack([(x - mean) / scale, np.ones_like(x)], axis=1)
    w = np.where(y > 0, positive_weight, 1.0)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 0.5 * (1.0 + np.tanh(0.5 * (z @ theta)))
        grad = z.T @ (w * (p - y)) + 1e-6 * theta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z + 1e-6 * np.eye(2)
        theta -= np.linalg.solve(hess, grad)
    return float(theta[0] / scale), float(theta[1] - theta[0] * mean / scale)


def calibrated_predictions(validation: Mapping[str, Any], test: Mapping[str, Any]) -> dict[str, Any]:
    """Test ``predictions`` (the fields ``anomaly_report.score`` reads) with motion energy,
    calibrated on validation, as the confidence."""
    a, b = fit_logistic(energy(validation["flows"]), np.asarray(validation["labels"]) == HARD)
    confidence = 0.5 * (1.0 + np.tanh(0.5 * (a * energy(test["flows"]) + b)))  # sigmoid, no overflow
    fields = ("labels", "video_index", "frame_index")
    return {**{f: np.asarray(test[f]) for f in fields}, "videos": np.asarray(test["videos"]),
            "confidence": confidence.astype(np.float32)}  # fmt: skip
