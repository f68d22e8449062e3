"""Membership inference against the autoencoder: was this frame in its training set?

DP bounds what any attacker learns about one training frame; membership
inference measures what a concrete attacker does learn. Two attacks, both
scoring "member" high:

- **Loss threshold** (Yeom et al. 2018): score = -reconstruction loss. Members
  were fitted, so they tend to reconstruct better. Weak on its own: a frame of
  a static, flat scene reconstructs well whether it was trained on or not.
- **Difficulty-calibrated** (Watson et al. 2022, "On the importance of
  difficulty calibration in membership inference attacks"): score = reference
  loss - target loss, where the reference is a model of the same architecture
  trained by the attacker on its own population frames, disjoint from the
  frames it tests. The reference loss says how hard the frame is for any such
  model; what is left is what the target memorised. This is the one chosen
  here (rather than the loss under the target's initial weights, which only
  says how bright the frame is). The reference costs one more training run.

Reported: ROC AUC (``roc.roc_auc``) and TPR at low FPR (Carlini et al. 2022:
an attack that is confident about a few members matters even at AUC 0.5). The
ROC curve has one vertex per distinct score, starting at (0, 0); TPR at an FPR
between two vertices is interpolated linearly, the TPR reached by randomising
between the two thresholds. With M non-members the smallest non-zero FPR the
data can show is 1/M: below it the number is an interpolation toward (0, 0)
or the first vertex, and ``min_measurable_fpr`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ppvad_jax.evaluation import roc, video_metrics

# --- ROC at low FPR -------------------------------------------------------------------------------


def roc_curve(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one vertex per distinct score, highest first, from (0, 0).

    Vertex i is "predict positive when score >= thresholds[i]"; vertex 0 has
    threshold +inf (nothing predicted positive). Every vertex is kept (low-FPR
    interpolation needs them all): ``video_metrics.roc_curve`` without dropping.
    """
    return video_metrics.roc_curve(labels, scores, drop_intermediate=False)


def tpr_at_fpr(labels: npt.ArrayLike, scores: npt.ArrayLike, target_fpr: float) -> float:
    """TPR at ``target_fpr`` on the ROC curve, linear between vertices (module docstring)."""
    if not 0 <= target_fpr <= 1:
        raise ValueError(f"target_fpr must be in [0, 1], got {target_fpr}")
    fpr, tpr, _ = roc_curve(labels, scores)
    # The last vertex at or below the target has the highest TPR among those (TPR never falls).
    i = int(np.searchsorted(fpr, target_fpr, side="right")) - 1
    if fpr[i] == target_fpr or i == len(fpr) - 1:
        return float(tpr[i])
    step = (target_fpr - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + step * (tpr[i + 1] - tpr[i]))


def attack_metrics(
    member_scores: npt.ArrayLike, nonmember_scores: npt.ArrayLike, *, fprs: Sequence[float] = (0.01, 0.001)
) -> dict[str, float | int]:
    """AUC and TPR at each FPR of scores where higher means "member"."""
    member_scores = np.asarray(member_scores, np.float64).ravel()
    nonmember_scores = np.asarray(nonmember_scores, np.float64).ravel()
    labels = np.r_[np.ones(member_scores.size, bool), np.zeros(nonmember_scores.size, bool)]
    scores = np.r_[member_scores, nonmember_scores]
    out = {
        "auc": roc.roc_auc(labels, scores),
        "members": int(member_scores.size),
        "nonmembers": int(nonmember_scores.size),
        "min_measurable_fpr": 1.0 / nonmember_scores.size,
    }
    for fpr in fprs:
        out[f"tpr_at_{fpr * 100:g}pct_fpr"] = tpr_at_fpr(labels, scores, fpr)
    return out


# --- Scores ---------------------------------------------------------------------------------------


def loss_threshold_scores(losses: npt.ArrayLike) -> np.ndarray:
    """Yeom et al.: lower loss, more likely a member."""
    return -np.asarray(losses, np.float64)


def calibrated_scores(target_losses: npt.ArrayLike, reference_losses: npt.ArrayLike) -> np.ndarray:
    """Watson et al.: how much better the target reconstructs the frame than the reference does."""
    target_losses = np.asarray(target_losses, np.float64)
    reference_losses = np.asarray(reference_losses, np.float64)
    if target_losses.shape != reference_losses.shape:
        raise ValueError(f"target {target_losses.shape} and reference {reference_losses.shape} losses differ")
    return reference_losses - target_losses


def frame_losses(
    reconstruct_fn: Callable[[np.ndarray], npt.ArrayLike], frames: npt.ArrayLike, *, batch_size: int = 16
) -> np.ndarray:
    """Per-frame MSE of ``reconstruct_fn`` (float [B, H, W, 3] in [0, 1] -> same), [N] float64.

    Frames are uint8 or float in [0, 1]; batched so a long clip never sits on
    the device at once.
    """
    frames = np.asarray(frames)
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    losses = []
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size].astype(np.float32) / scale
        recon = np.asarray(reconstruct_fn(batch), np.float64)
        losses.append(np.mean(np.square(recon - batch), axis=tuple(range(1, batch.ndim))))
    return np.concatenate(losses) if losses else np.zeros(0)


def membership_inference(
    target_fn: Callable[[np.ndarray], npt.ArrayLike],
    members: npt.ArrayLike,
    nonmembers: npt.ArrayLike,
    *,
    reference_fn: Callable[[np.ndarray], npt.ArrayLike] | None = None,
    batch_size: int = 16,
) -> dict[str, dict[str, float | int] | None]:
    """Both attacks on a target autoencoder.

    Args:
      target_fn: the target's reconstruction, frames -> frames (float in [0, 1]).
      members: frames the target was trained on; nonmembers: frames it was not
        (same distribution, e.g. the held-out split of the same videos).
      reference_fn: a reference model's reconstruction, trained on neither
        (module docstring); without it only the loss-threshold attack runs.

    Returns:
      ``{"loss_threshold": metrics, "calibrated": metrics or None}`` (see ``attack_metrics``).
    """
    target_in = frame_losses(target_fn, members, batch_size=batch_size)
    target_out = frame_losses(target_fn, nonmembers, batch_size=batch_size)
    out = {
        "loss_threshold": attack_metrics(loss_threshold_scores(target_in), loss_threshold_scores(target_out)),
        "calibrated": None,
    }
    if reference_fn is not None:
        ref_in = frame_losses(reference_fn, members, batch_size=batch_size)
        ref_out = frame_losses(reference_fn, nonmembers, batch_size=batch_size)
        out["calibrated"] = attack_metrics(
            calibrated_scores(target_in, ref_in), calibrated_scores(target_out, ref_out)
        )
    return out
