"""An empirical lower bound on a run's epsilon from canaries in one training run.

The accountant gives an upper bound: no attacker can do better than epsilon. An audit gives
a lower bound: this attacker did this well, so epsilon is at least that. A lower bound far
below the upper one says the attack is weak or the accounting loose; a lower bound *above*
the accountant's epsilon says the implementation leaks more than it claims (a bug).

The one-run audit of Steinke, Nasr and Jagielski (NeurIPS 2023, "Privacy auditing with one (1)
training run"): ``m`` canaries are each included in the training set independently with
probability 1/2 (a secret coin per canary). After training the auditor scores every canary
(here: how much better the model does on it than on similar unseen data), guesses "in" for
the ``k_plus`` highest scores and "out" for the ``k_minus`` lowest, abstains on the rest, and
counts its correct guesses ``v`` out of ``r = k_plus + k_minus``. Their theorem: under
(epsilon, delta)-DP with respect to the canaries (each canary one unit of privacy, as a frame
is here), ``P[v correct or more] <= p_value(m, r, v, epsilon, delta)``, where for delta = 0
the bound is the tail of Binomial(r, e^eps / (1 + e^eps)) (each guess no better than
randomized response), and delta > 0 adds a term at most ``2 m delta`` times the largest
average of the binomial's probabilities just below ``v``. ``epsilon_lower_bound`` is the
largest epsilon that this outcome rejects at the given confidence: with probability at least
``confidence`` the audit does not exceed the true epsilon.

It works for any mechanism that outputs something the canaries can be scored on; nothing here
knows about models (``privacy`` imports nothing from ``models``). The tests check it on
randomized response and on the Gaussian mechanism, where epsilon is known exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize, stats


def inclusion(m: int, rng: np.random.Generator) -> np.ndarray:
    """[m] bool: each canary in the training set with probability 1/2 (from the run's secret rng)."""
    if m < 1:
        raise ValueError(f"need at least one canary, got {m}")
    return rng.random(m) < 0.5


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Probability of ``v`` or more correct of ``r`` guesses on ``m`` canaries under (eps, delta)-DP."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and delta in [0, 1], got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))  # randomized response's accuracy at epsilon
    tail = float(stats.binom.sf(v - 1, r, q))  # P[Bin(r, q) >= v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    # The delta term: the largest mean, over i = 1..v, of P[v - i <= Bin(r, q) < v] / i.
    below = stats.binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[Bin = v-1], P[Bin = v-2], ...
    worst = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2 * m * delta * worst, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, *, delta: float, confidence: float = 0.95) -> float:
    """The largest epsilon rejected at ``confidence`` by ``v`` of ``r`` correct; 0 if none is."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1 - confidence
    if p_value(m, r, v, 0.0, delta) > alpha:
        return 0.0  # the outcome is plausible even with no privacy loss at all
    hi = 1.0
    while p_value(m, r, v, hi, delta) <= alpha:  # p_value rises with epsilon
        hi *= 2
        if hi > 1e3:
            return math.inf
    return float(optimize.brentq(lambda e: p_value(m, r, v, e, delta) - alpha, 0.0, hi, xtol=1e-6))


@dataclasses.dataclass(frozen=True)
class Audit:
    canaries: int
    guesses: int
    correct: int
    k_plus: int
    k_minus: int
    delta: float
    confidence: float
    epsilon_lower_bound: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def audit(scores, included, *, delta, confidence=0.95, k_plus=None, k_minus=None) -> Audit:
    """Guesses from canary ``scores`` (higher: more likely in) against the coins ``included``.

    ``k_plus`` / ``k_minus`` default to a tenth of the canaries each; they must be fixed before
    looking at the scores (choosing them on the outcome would void the confidence).
    """
    scores, included = np.asarray(scores, np.float64), np.asarray(included, bool)
    m = len(scores)
    if included.shape != scores.shape or m == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(
            f"need one finite score per canary, got {scores.shape} scores, {included.shape} coins"
        )
    k_plus = max(1, m // 10) if k_plus is None else int(k_plus)
    k_minus = max(1, m // 10) if k_minus is None else int(k_minus)
    if k_plus + k_minus > m:
        raise ValueError(f"k_plus + k_minus = {k_plus + k_minus} guesses exceed the {m} canaries")
    order = np.argsort(-scores, kind="stable")
    correct = int(included[order[:k_plus]].sum() + (~included[order[m - k_minus :]]).sum())
    r = k_plus + k_minus
    bound = epsilon_lower_bound(m, r, correct, delta=delta, confidence=confidence)
    return Audit(m, r, correct, k_plus, k_minus, delta, confidence, bound)
