"""The likelihood-ratio membership attack (LiRA, Carlini et al., S&P 2022), for any per-example loss.

A loss threshold treats every example alike, so it mostly measures which examples are easy.
LiRA calibrates per example: ``K`` reference models are trained on random halves of a candidate
pool, so each candidate has losses from models that trained on it (IN) and models that did not
(OUT). The target's loss on the candidate is then scored by how much more likely it is under
the candidate's IN Gaussian than under its OUT Gaussian (the online attack), or how far into
the OUT Gaussian's lower tail it falls (the offline attack, OUT models only). Losses are taken
as ``log(loss)`` (reconstruction errors are closer to Gaussian on a log scale). Where a
candidate has fewer than two IN (or OUT) losses, or with ``fixed_variance`` (the default, as
the paper advises for few reference models), the spread pooled over all candidates is used.

Reported as the paper asks: ROC AUC and the TPR at 1% and 0.1% FPR (the rare, confident
errors that matter for privacy), by ``membership.attack_metrics``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ppvad_jax.evaluation import membership

_FLOOR = 1e-12


def balanced_membership(num_models, num_candidates, rng) -> np.ndarray:
    """[K, N] bool: each candidate in exactly half of the ``num_models`` reference training sets
    (K even), so that every candidate has IN and OUT losses (random halves leave some without)."""
    if num_models < 2 or num_models % 2:
        raise ValueError(f"need an even number of reference models >= 2, got {num_models}")
    ranks = np.argsort(rng.random((num_models, num_candidates)), axis=0)
    return ranks < num_models // 2


def _log(losses):
    losses = np.asarray(losses, np.float64)
    if not np.all(np.isfinite(losses)) or np.any(losses < 0):
        raise ValueError("losses must be finite and non-negative")
    return np.log(losses + _FLOOR)


def _gaussians(ref, mask, fixed_variance):
    """Per-candidate mean of ``ref`` [K, N] where ``mask``; its std per candidate, or pooled over
    all candidates when ``fixed_variance`` (the paper's choice for few reference models: a std
    from 4-8 losses is noisier than the difference it measures) or too few losses."""
    count = mask.sum(axis=0)
    mean = np.where(count > 0, (ref * mask).sum(axis=0) / np.maximum(count, 1), np.nan)
    dev = np.where(mask, ref - mean[None], 0.0)
    var = (dev**2).sum(axis=0) / np.maximum(count - 1, 1)
    pooled = np.sqrt(np.sum(dev**2) / max(int(np.sum(np.maximum(count - 1, 0))), 1))
    std = np.where((count >= 2) & (var > 0) & (not fixed_variance), np.sqrt(var), pooled)
    return mean, np.maximum(std, 1e-6)


def scores(target_losses, reference_losses, reference_in, *, online=True, fixed_variance=True) -> np.ndarray:
    """[N] membership scores, higher = more likely a member of the target's training set.

    Args:
      target_losses: [N] the target model's loss on each candidate.
      reference_losses: [K, N] each reference model's loss on each candidate.
      reference_in: [K, N] bool, whether reference k trained on candidate n.
      online: IN and OUT Gaussians; False: OUT only (no model needs to train on a candidate).
      fixed_variance: one std over all candidates (``_gaussians``).
    """
    target, ref = _log(target_losses), _log(reference_losses)
    mask = np.asarray(reference_in, bool)
    if ref.shape != mask.shape or ref.shape[1:] != target.shape:
        raise ValueError(
            f"shapes differ: target {target.shape}, references {ref.shape}, in-mask {mask.shape}"
        )
    out_mean, out_std = _gaussians(ref, ~mask, fixed_variance)
    if np.isnan(out_mean).any():
        raise ValueError("every candidate needs at least one reference model that did not train on it")
    if not online:
        return stats.norm.logsf(target, out_mean, out_std)  # a low loss is far in the OUT tail
    in_mean, in_std = _gaussians(ref, mask, fixed_variance)
    if np.isnan(in_mean).any():
        raise ValueError("the online attack needs, for every candidate, a reference model trained on it")
    return stats.norm.logpdf(target, in_mean, in_std) - stats.norm.logpdf(target, out_mean, out_std)


def report(member, score) -> dict:
    """AUC and TPR at 1% and 0.1% FPR (``membership.attack_metrics``, the project's one ROC)."""
    member, score = np.asarray(member, bool), np.asarray(score, np.float64)
    return membership.attack_metrics(score[member], score[~member])
