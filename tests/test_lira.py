"""LiRA on a model of losses whose best attack is known: per-example difficulty plus a member shift."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from ppvad_jax.evaluation import lira


def _world(seed=0, n=4000, k=16, shift=0.2, noise=0.1):
    rng = np.random.default_rng(seed)
    difficulty = rng.standard_normal(n)  # spread of 1 between examples: what a threshold sees
    ref_in = lira.balanced_membership(k, n, rng)
    ref = np.exp(difficulty - shift * ref_in + noise * rng.standard_normal((k, n)))
    member = rng.random(n) < 0.5
    target = np.exp(difficulty - shift * member + noise * rng.standard_normal(n))
    return target, ref, ref_in, member


def test_online_lira_reaches_the_optimal_auc_and_beats_a_loss_threshold():
    target, ref, ref_in, member = _world()
    got = lira.report(member, lira.scores(target, ref, ref_in))
    best = stats.norm.cdf(0.2 / (0.1 * np.sqrt(2)))  # two Gaussians 0.2 apart, each of std 0.1
    assert got["auc"] == pytest.approx(best, abs=0.03)
    threshold = metrics.roc_auc_score(member, -target)  # the loss attack: easy examples look "in"
    assert threshold < 0.6 and got["auc"] > threshold + 0.25
    assert got["tpr_at_1pct_fpr"] > 0.2 and got["members"] + got["nonmembers"] == 4000
    offline = lira.report(member, lira.scores(target, ref, ref_in, online=False))
    assert offline["auc"] > 0.85


def test_no_leak_gives_chance():
    rng = np.random.default_rng(2)
    n, k = 3000, 8
    difficulty = rng.standard_normal(n)
    ref_in = lira.balanced_membership(k, n, rng)
    ref = np.exp(difficulty + 0.1 * rng.standard_normal((k, n)))
    member = rng.random(n) < 0.5
    target = np.exp(difficulty + 0.1 * rng.standard_normal(n))
    assert abs(lira.report(member, lira.scores(target, ref, ref_in))["auc"] - 0.5) < 0.04


def test_balanced_membership_puts_each_candidate_in_half_the_models():
    mask = lira.balanced_membership(8, 500, np.random.default_rng(3))
    assert (mask.sum(axis=0) == 4).all() and 200 < mask.sum(axis=1).min() <= mask.sum(axis=1).max() < 300
    with pytest.raises(ValueError, match="even number"):
        lira.balanced_membership(3, 10, np.random.default_rng(0))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="finite and non-negative"):
        lira.scores(np.array([np.nan, 1.0]), np.ones((2, 2)), np.eye(2, dtype=bool))
    with pytest.raises(ValueError, match="shapes differ"):
        lira.scores(np.ones(3), np.ones((2, 2)), np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="did not train on it"):
        lira.scores(np.ones(2), np.ones((2, 2)), np.ones((2, 2), bool))
