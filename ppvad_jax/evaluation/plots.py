"""PNG plots for evaluation reports: ROC curves and per-video score timelines.

Figures are built with ``matplotlib.figure.Figure`` and written by the Agg
canvas, never through pyplot: no global figure state, no backend switch, safe in
threads and headless. Each plot is a fresh figure of exactly ``size`` inches x
``dpi`` pixels (no tight bounding box), so report layouts and tests can rely on
the pixel size.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ppvad_jax.data.ucf_layout import HARD, SOFT
from ppvad_jax.evaluation import video_metrics

# Timeline axes in figure fractions (left, bottom, width, height); the right margin holds
# the legend, so it never covers the shading. Public so a test can find frames in pixels.
TIMELINE_AXES_RECT = (0.06, 0.16, 0.72, 0.74)
TIMELINE_YLIM = (0.0, 1.1)
HARD_COLOR, SOFT_COLOR, SHADE_ALPHA = "#8b0000", "#ffa500", 0.35


def _save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")
    return path


def plot_roc_curves(
    curves: Mapping[
        str, tuple[npt.ArrayLike | Sequence[npt.ArrayLike], npt.ArrayLike | Sequence[npt.ArrayLike]]
    ],
    path: str | os.PathLike,
    *,
    title: str = "ROC",
    size: tuple[float, float] = (6.0, 6.0),
    dpi: int = 100,
) -> dict[str, float]:
    """Several named ROC curves on one axes, each with its AUC in the legend.

    The paper's Figure 10 is this plot with one curve per autoencoder (No DP, DP
    Adam, DP Adagrad) feeding the same classifier.

    Args:
      curves: mapping name -> (labels, scores), binary frame labels and scores
        (lists of per-video arrays or flat arrays), plotted in mapping order.
      path: PNG to write (parents are created).
      title: axes title.
      size, dpi: figure size in inches and pixels per inch.

    Returns:
      dict name -> AUC, as written in the legend.
    """
    fig = Figure(figsize=size, dpi=dpi)
    ax = fig.add_subplot()
    aucs = {}
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = video_metrics.roc_curve(labels, scores)
        aucs[name] = video_metrics.frame_level_auc(labels, scores)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC = {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.5", label="chance")
    ax.set(
        xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)
    return aucs


def _runs(mask):
    """[start, end) of every maximal run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[0::2], edges[1::2], strict=True))


def plot_score_timeline(
    confidence: npt.ArrayLike,
    score: npt.ArrayLike,
    frame_labels: npt.ArrayLike,
    path: str | os.PathLike,
    *,
    threshold: float = 0.5,
    title: str = "",
    size: tuple[float, float] = (10.0, 3.0),
    dpi: int = 100,
) -> pathlib.Path:
    """One video: frame confidence and SAS over frames, ground truth shaded.

    Frame t occupies x in [t, t + 1): hard-anomaly frames are shaded dark red,
    soft-anomaly frames orange (both at ``SHADE_ALPHA``), and a dashed line marks the
    alert threshold.

    Args:
      confidence: [T] classifier confidence per frame.
      score: [T] sigmoidal anomaly score per frame.
      frame_labels: [T] NORMAL / SOFT / HARD per frame.
      path: PNG to write.
      threshold: the alert level drawn (VL-F1 uses 0.5).
      title, size, dpi: as in ``plot_roc_curves``.
    """
    confidence, score, frame_labels = (np.ravel(np.asarray(a)) for a in (confidence, score, frame_labels))
    num_frames = frame_labels.size
    if not confidence.size == score.size == num_frames:
        raise ValueError(
            f"lengths differ: {confidence.size} confidences, {score.size} scores, {num_frames} labels"
        )
    fig = Figure(figsize=size, dpi=dpi)
    ax = fig.add_axes(TIMELINE_AXES_RECT)
    for label, color, name in ((HARD, HARD_COLOR, "hard anomaly"), (SOFT, SOFT_COLOR, "soft anomaly")):
        for i, (start, end) in enumerate(_runs(frame_labels == label)):
            ax.axvspan(start, end, color=color, alpha=SHADE_ALPHA, lw=0, label=None if i else name)
    centers = np.arange(num_frames) + 0.5
    ax.plot(centers, confidence, lw=0.8, color="tab:blue", label="confidence")
    ax.plot(centers, score, lw=1.8, color="black", label="SAS")
    ax.axhline(threshold, ls="--", lw=0.8, color="0.4", label=f"threshold {threshold:g}")
    ax.set(xlim=(0, max(num_frames, 1)), ylim=TIMELINE_YLIM, xlabel="frame", ylabel="score", title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return _save(fig, path)
