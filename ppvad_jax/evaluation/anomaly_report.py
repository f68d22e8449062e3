"""Scores a classifier's test predictions: SAS per video, FL-AUC, VL-F1, ROC and timelines.

Input is ``predictions.npz`` written by the classifier trainer: one confidence
per sampled test frame with its label (0 normal, 1 soft, 2 hard), video and
frame index. Frame-level AUC counts hard anomalies as positive and soft ones as
normal (the paper's test protocol, section 4.3.3). The sigmoidal anomaly score
runs over each video's sampled frames in frame order; a video is predicted
anomalous when its SAS exceeds 0.5 anywhere (VL-F1).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ppvad_jax.evaluation import plots, sas, video_metrics


def per_video(
    predictions: Mapping[str, np.ndarray],
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """[(name, frame order, confidences, labels)] for each test video, frames sorted."""
    out = []
    for v, name in enumerate(predictions["videos"]):
        rows = np.flatnonzero(predictions["video_index"] == v)
        rows = rows[np.argsort(predictions["frame_index"][rows], kind="stable")]
        out.append((str(name), predictions["frame_index"][rows], predictions["confidence"][rows],
                    predictions["labels"][rows]))  # fmt: skip
    return [o for o in out if len(o[1])]


def score(
    predictions: Mapping[str, np.ndarray], *, tau: float = 0.5, nu: float = 2.0, threshold: float = 0.5
) -> dict[str, Any]:
    """FL-AUC, VL-F1 and the per-video SAS curves of one run's predictions."""
    videos = per_video(predictions)
    labels = [video_metrics.frame_positives(v[3]) for v in videos]
    confidence = [v[2] for v in videos]
    scores = [np.asarray(sas.sigmoidal_anomaly_score(c, tau=tau, nu=nu)) for c in confidence]
    truth = video_metrics.video_is_anomalous([v[3] for v in videos])
    pooled = np.concatenate(labels) if labels else np.zeros(0, bool)
    if pooled.all() or not pooled.any():
        # No AUC exists without both classes; say so instead of printing a number.
        fl_auc, why = None, f"FL-AUC undefined: {int(pooled.sum())} anomalous of {pooled.size} test frames"
    else:
        fl_auc, why = video_metrics.frame_level_auc(labels, confidence), None
    return {
        "fl_auc": fl_auc,
        "fl_auc_undefined": why,
        "within_anomalous_auc": within_anomalous_auc(videos),
        "vl": video_metrics.video_level_f1(truth, scores, threshold=threshold),
        "videos": videos,
        "sas": scores,
        "frame_labels": labels,
    }


def within_anomalous_auc(videos: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> float | None:
    """AUC of hard against the other frames of the anomalous test videos only (None without both).

    Which scene a video shows cannot raise it: every frame compared comes from a video that has
    an anomaly, so a classifier must tell *when* it happens, not *where* (the trap of frame
    features on few videos, which FL-AUC over all test frames does not catch)."""
    anomalous = [v for v in videos if (v[3] > 0).any()]
    if not anomalous:
        return None
    labels = np.concatenate([video_metrics.frame_positives(v[3]) for v in anomalous])
    if labels.all() or not labels.any():
        return None
    return video_metrics.frame_level_auc([labels], [np.concatenate([v[2] for v in anomalous])])


def write_report(
    workdir: str | os.PathLike, *, out_name: str = "eval.json", timelines: int = 6
) -> dict[str, Any]:
    """Reads W/predictions.npz and W/metrics.json; writes W/eval.json, W/roc.png, W/timelines/."""
    workdir = pathlib.Path(workdir)
    path = workdir / "predictions.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train first (python -m launch.train_classifier)")
    with np.load(path) as f:
        predictions = {k: f[k] for k in f.files}
    metrics = json.loads((workdir / "metrics.json").read_text())
    result = score(predictions)
    if result["fl_auc"] is not None:
        plots.plot_roc_curves(
            {metrics["variant"]: (result["frame_labels"], [v[2] for v in result["videos"]])},
            workdir / "roc.png",
            title=f"frame-level ROC, {metrics['variant']} ({metrics['optimizer']})",
        )
    for name, _, confidence, labels in result["videos"][:timelines]:
        i = [v[0] for v in result["videos"]].index(name)
        plots.plot_score_timeline(
            confidence, result["sas"][i], labels, workdir / "timelines" / f"{name}.png", title=name
        )
    report = {
        "variant": metrics["variant"],
        "optimizer": metrics["optimizer"],
        "fl_auc": result["fl_auc"],
        "fl_auc_undefined": result["fl_auc_undefined"],
        "within_anomalous_auc": result["within_anomalous_auc"],
        "vl_f1": result["vl"]["f1"],
        "vl_precision": result["vl"]["precision"],
        "vl_recall": result["vl"]["recall"],
        "test_videos": len(result["videos"]),
        "test_frames": int(sum(len(v[1]) for v in result["videos"])),
        "classifier_privacy": {k: metrics.get(k) for k in ("epsilon_rdp", "epsilon_pld", "delta", "private")},
        "autoencoder_privacy": metrics.get("autoencoder_privacy"),
        "combined_privacy": metrics.get("combined_privacy"),
        "backbone_random_init": metrics.get("backbone_random_init"),
        "detector": metrics.get("detector"),
    }
    (workdir / out_name).write_text(json.dumps(report, indent=2))
    return report


def combined_privacy_text(combined: Mapping[str, Any] | None) -> str:
    """A report's sentence on holding both models (``privacy.plan.combined``); "" without one."""
    if combined is None:
        return ""
    if combined.get("epsilon_pld") is None:
        return f"Autoencoder and classifier together: no combined epsilon ({combined['why']})."
    return (
        f"Autoencoder and classifier together (same frames, both released): epsilon "
        f"{combined['epsilon_pld']:.4g} (PLD) at delta {combined['delta']:g}, dp_accounting "
        "composing both runs' events."
    )


def combined_privacy_cell(combined: Mapping[str, Any] | None) -> str:
    """The same as a table cell: the composed epsilon, or why there is none."""
    if not combined:
        return "no autoencoder"
    if combined.get("epsilon_pld") is None:
        return "not private" if combined.get("private") is False else "n/a: " + combined["why"]
    return f"{combined['epsilon_pld']:.2f}"
