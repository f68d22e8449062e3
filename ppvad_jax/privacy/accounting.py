"""Privacy accounting with Google's ``dp_accounting``: RDP and PLD, and calibration.

The mechanism accounted for is what the trainer does: every step samples each
unit (a frame, or a whole video) independently with probability q (Poisson
sampling), clips each unit's gradient to C and adds Gaussian noise of standard
deviation sigma * C to the sum: ``PoissonSampled(q, Gaussian(sigma))``, composed
over the steps. Adjacency: add or remove one unit.

Two accountants, both reported:
- RDP over a wide order grid (1.01 to 1024, including every integer to 64 and
  TF Privacy's default orders, so it is never worse than TF Privacy's number);
  at sigma <= 0.3 the optimal order sits at the bottom of the grid.
- PLD (privacy loss distributions), tighter; the headline number. Its
  discretization interval scales with epsilon (1e-5 of the RDP epsilon, at
  least 1e-4), a relative error below 1e-4 that keeps sigma = 0.1 runs at a
  fraction of a second instead of a minute. The estimate is pessimistic: an
  upper bound.
"""

import dataclasses
import logging as std_logging
import math
from collections.abc import Sequence
from typing import Any

import dp_accounting
import numpy as np

RDP_ORDERS = tuple(
    sorted(
        set(
            np.round(
                np.concatenate(
                    [
                        np.linspace(1.01, 1.99, 50),
                        [1 + x / 10.0 for x in range(1, 100)],
                        np.arange(2, 65),
                        np.arange(64, 256, 4),
                        np.geomspace(256, 1024, 9),
                    ]
                ),
                6,
            ).tolist()
        )
    )
)
PLD_MIN_DISCRETIZATION = 1e-4


@dataclasses.dataclass(frozen=True)
class DpParams:
    """What determines epsilon. ``steps`` counts noisy updates."""

    noise_multiplier: float
    sampling_rate: float
    steps: int
    delta: float

    def __post_init__(self):
        for name in ("noise_multiplier", "sampling_rate", "delta"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")
        if self.noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


def dp_event(params: DpParams) -> dp_accounting.DpEvent:
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            params.sampling_rate, dp_accounting.GaussianDpEvent(params.noise_multiplier)
        ),
        params.steps,
    )


def epsilon_rdp(params: DpParams) -> tuple[float, float]:
    """``(epsilon, optimal order)`` from the RDP accountant; inf when sigma is 0."""
    if params.steps == 0:
        return 0.0, None
    if params.noise_multiplier == 0:
        return math.inf, None
    accountant = dp_accounting.rdp.RdpAccountant(list(RDP_ORDERS))
    # dp_accounting logs a warning for every fractional order whose series does not converge,
    # while composing (it then skips that order, which only loosens the bound: epsilon is a
    # minimum over orders); dozens of lines per call drowned the demo's console.
    absl_logger = std_logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(std_logging.ERROR)
    try:
        accountant.compose(dp_event(params))
        eps, order = accountant.get_epsilon_and_optimal_order(params.delta)
    finally:
        absl_logger.setLevel(level)
    return float(eps), float(order)


def pld_discretization(params: DpParams) -> float:
    """The PLD discretization interval used for these parameters (see module docstring)."""
    eps_rdp, _ = epsilon_rdp(params)
    return float(min(max(eps_rdp * 1e-5, PLD_MIN_DISCRETIZATION), 1.0))


def epsilon_pld(params: DpParams, *, discretization: float | None = None) -> float:
    """Epsilon from the PLD accountant; inf when sigma is 0."""
    if params.steps == 0:
        return 0.0
    if params.noise_multiplier == 0:
        return math.inf
    discretization = pld_discretization(params) if discretization is None else discretization
    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=discretization)
    accountant.compose(dp_event(params))
    return float(accountant.get_epsilon(params.delta))


def report(params: DpParams, *, unit: str = "frame", sampling: str = "poisson", pld: bool = True) -> dict:
    """Everything a result should carry next to its epsilon, as a JSON-able dict."""
    eps_rdp, order = epsilon_rdp(params)
    finite = pld and params.noise_multiplier > 0 and params.steps > 0
    out = {
        "epsilon_rdp": eps_rdp,
        "rdp_order": order,
        "epsilon_pld": epsilon_pld(params) if pld else None,
        "pld_discretization": pld_discretization(params) if finite else None,
        "delta": params.delta,
        "noise_multiplier": params.noise_multiplier,
        "sampling_rate": params.sampling_rate,
        "steps": params.steps,
        "sampling": sampling,
        "unit_of_privacy": unit,
        "accountants": "dp_accounting: RDP (orders 1.01-1024) and PLD (pessimistic), "
        "Poisson-subsampled Gaussian, add/remove adjacency",
    }
    return out


def composed(params_list: Sequence[DpParams], delta: float) -> dict:
    """Epsilon (RDP and PLD) of several trainings released together about the same units.

    The autoencoder and the classifier train on the same frames: whoever sees both models
    sees the composition of their mechanisms, at one delta. ``params_list``: the accounted
    ``DpParams`` of each (their own deltas are ignored).
    """
    if any(p.noise_multiplier == 0 and p.steps for p in params_list):
        return {"epsilon_rdp": math.inf, "epsilon_pld": math.inf, "delta": delta}
    events = [dp_event(p) for p in params_list if p.steps]
    if not events:
        return {"epsilon_rdp": 0.0, "epsilon_pld": 0.0, "delta": delta}
    event = dp_accounting.ComposedDpEvent(events)
    rdp = dp_accounting.rdp.RdpAccountant(list(RDP_ORDERS))
    absl_logger = std_logging.getLogger("absl")  # see epsilon_rdp
    level = absl_logger.level
    absl_logger.setLevel(std_logging.ERROR)
    try:
        rdp.compose(event)
        eps_rdp = float(rdp.get_epsilon(delta))
    finally:
        absl_logger.setLevel(level)
    discretization = float(min(max(eps_rdp * 1e-5, PLD_MIN_DISCRETIZATION), 1.0))
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=discretization)
    pld.compose(event)
    return {"epsilon_rdp": eps_rdp, "epsilon_pld": float(pld.get_epsilon(delta)), "delta": delta}


def json_safe(value: Any) -> Any:
    """JSON has no infinity or NaN: they are written as the strings "inf", "-inf", "nan", at any
    depth (an unbounded epsilon nested in a report included)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def default_delta(num_units: int) -> float:
    """A delta below 1/N: 10^-k with 10^k > N (at most 1e-5)."""
    return min(1e-5, 10.0 ** -math.ceil(math.log10(max(num_units, 2)) + 0.0001))


def calibrate_noise_multiplier(
    *, target_epsilon: float, sampling_rate: float, steps: int, delta: float, accountant: str = "pld",
    tol: float = 1e-3,
) -> float:  # fmt: skip
    """Smallest noise multiplier whose epsilon is at most ``target_epsilon``.

    Args:
      accountant: "pld" (default, tighter) or "rdp".
    """
    if target_epsilon <= 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon}")
    if accountant == "pld":

        def make_accountant():
            return dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_MIN_DISCRETIZATION)
    elif accountant == "rdp":

        def make_accountant():
            return dp_accounting.rdp.RdpAccountant(list(RDP_ORDERS))
    else:
        raise ValueError(f"accountant must be 'pld' or 'rdp', got {accountant!r}")

    def make_event(sigma):
        return dp_event(DpParams(sigma, sampling_rate, steps, delta))

    return float(
        dp_accounting.calibrate_dp_mechanism(
            make_accountant,
            make_event,
            target_epsilon,
            delta,
            dp_accounting.LowerEndpointAndGuess(0.0, 1.0),
            tol=tol,
        )
    )
