"""The one-run audit's lower bound on mechanisms whose epsilon is known exactly: it stays below
the truth (at the stated confidence) and comes close to it with many canaries."""

import dp_accounting
import numpy as np
import pytest

from ppvad_jax.privacy import audit


def _randomized_response(epsilon, m, rng):
    included = audit.inclusion(m, rng)
    truthful = rng.random(m) < np.exp(epsilon) / (1 + np.exp(epsilon))
    return np.where(truthful, included, ~included).astype(float), included


def test_randomized_response_bound_is_valid_and_nearly_tight():
    eps, m = 1.0, 20_000
    bounds = []
    for seed in range(20):
        scores, included = _randomized_response(eps, m, np.random.default_rng(seed))
        result = audit.audit(scores, included, delta=0.0, k_plus=m // 2, k_minus=m // 2)
        bounds.append(result.epsilon_lower_bound)
    bounds = np.array(bounds)
    assert (bounds > eps).sum() <= 3  # at 95% confidence: about 1 in 20 may exceed the truth
    assert bounds.mean() > 0.9 * eps


def _gaussian_epsilon(sigma, delta):
    accountant = dp_accounting.pld.PLDAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(sigma))
    return accountant.get_epsilon(delta)


def test_gaussian_mechanism_bound_stays_below_the_accountants_epsilon():
    sigma, delta, m = 0.5, 1e-5, 5_000
    true_eps = _gaussian_epsilon(sigma, delta)
    bounds = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        included = audit.inclusion(m, rng)
        scores = included + sigma * rng.standard_normal(m)  # each canary: sensitivity 1, noise sigma
        bounds.append(audit.audit(scores, included, delta=delta).epsilon_lower_bound)
    bounds = np.array(bounds)
    assert (bounds > true_eps).sum() <= 3
    assert bounds.min() > 0.3 * true_eps  # the audit sees a real privacy loss


def test_no_signal_gives_no_lower_bound():
    rng = np.random.default_rng(0)
    included = audit.inclusion(1000, rng)
    result = audit.audit(rng.standard_normal(1000), included, delta=1e-5)
    assert result.epsilon_lower_bound < 0.3 and result.guesses == 200


def test_delta_only_weakens_the_bound():
    for v in (60, 80, 95):
        assert audit.p_value(1000, 100, v, 1.0, 1e-4) >= audit.p_value(1000, 100, v, 1.0, 0.0)
        pure = audit.epsilon_lower_bound(1000, 100, v, delta=0.0)
        assert audit.epsilon_lower_bound(1000, 100, v, delta=1e-4) <= pure


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="one finite score per canary"):
        audit.audit([0.1, np.nan], [True, False], delta=0.0)
    with pytest.raises(ValueError, match="exceed the 4 canaries"):
        audit.audit(np.zeros(4), np.zeros(4, bool), delta=0.0, k_plus=3, k_minus=3)
    with pytest.raises(ValueError, match="0 <= v <= r <= m"):
        audit.p_value(10, 5, 6, 1.0, 0.0)
