"""DpPlan's refusals and the composition of two runs (privacy/plan.py), against dp_accounting by hand."""

import dp_accounting
import pytest

from ppvad_jax.evaluation import anomaly_report
from ppvad_jax.privacy import plan as dp_plan


def _pld_epsilon(events, delta):
    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.ComposedDpEvent(events))
    return accountant.get_epsilon(delta)


def _gaussian(q, sigma, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_the_autoencoder_and_the_classifier_compose():
    """Guards a fixed defect: the two epsilons of one set of frames were only reported apart."""
    ae = dp_plan.DpPlan(
        num_units=2000, expected_batch_size=20, noise_multiplier=1.2, l2_clip_norm=0.01, delta=1e-4
    )
    cls = dp_plan.DpPlan(
        num_units=3000, expected_batch_size=96, noise_multiplier=3.0, l2_clip_norm=1.0, delta=1e-4,
        records_per_unit=2, selection_factor=2, divisor=32.0,
    )  # fmt: skip
    reports = [ae.report(steps_run=400, planned_steps=500), cls.report(steps_run=300, planned_steps=300)]
    got = dp_plan.combined(reports, ["autoencoder", "classifier"])
    q = 96 / 3000
    want = _pld_epsilon([_gaussian(0.01, 1.2, 500), _gaussian(1 - (1 - q) ** 2, 0.75, 300)], 2e-4)
    assert got["private"] and got["delta"] == pytest.approx(2e-4)
    assert got["epsilon_pld"] == pytest.approx(want, rel=2e-3)
    # Tighter than adding the two epsilons; above the classifier alone at the same total delta.
    assert got["epsilon_pld"] < sum(r["epsilon_pld"] for r in reports)
    assert got["epsilon_pld"] > _pld_epsilon([_gaussian(1 - (1 - q) ** 2, 0.75, 300)], 2e-4)
    assert f"epsilon {got['epsilon_pld']:.4g} (PLD) at delta 0.0002" in anomaly_report.combined_privacy_text(
        got
    )
    assert anomaly_report.combined_privacy_cell(got) == f"{got['epsilon_pld']:.2f}"


def test_no_combined_epsilon_when_either_is_not_private_or_the_units_differ():
    private = dp_plan.DpPlan(
        num_units=100, expected_batch_size=10, noise_multiplier=1.0, l2_clip_norm=1.0, delta=1e-3
    )
    report = private.report(steps_run=10, planned_steps=10)
    off = dp_plan.combined([dp_plan.not_private(), report], ["autoencoder", "classifier"])
    assert off["private"] is False and off["epsilon_pld"] is None and "autoencoder is not" in off["why"]
    assert anomaly_report.combined_privacy_cell(
        off
    ) == "not private" and "no combined epsilon" in anomaly_report.combined_privacy_text(off)
    video = dp_plan.DpPlan(
        num_units=100,
        expected_batch_size=10,
        noise_multiplier=1.0,
        l2_clip_norm=1.0,
        delta=1e-3,
        unit="video",
    ).report(steps_run=10, planned_steps=10)
    mixed = dp_plan.combined([video, report], ["autoencoder", "classifier"])
    assert mixed["epsilon_pld"] is None and "units of privacy differ" in mixed["why"]


def test_a_plan_refuses_what_would_make_its_epsilon_wrong():
    """Guards items 6 and 10: B > N trained then crashed; delta >= 1/N was accepted silently."""
    with pytest.raises(ValueError, match=r"expected batch size 120 must be in \(0, 100\]"):
        dp_plan.DpPlan(num_units=100, expected_batch_size=120, noise_multiplier=1, l2_clip_norm=1, delta=1e-3)
    with pytest.raises(ValueError, match="delta 0.01 >= 1/N"):
        dp_plan.DpPlan(num_units=100, expected_batch_size=10, noise_multiplier=1, l2_clip_norm=1, delta=0.01)
    loose = dp_plan.DpPlan(
        num_units=100,
        expected_batch_size=10,
        noise_multiplier=1,
        l2_clip_norm=1,
        delta=0.01,
        allow_large_delta=True,
    )
    assert loose.report(steps_run=1, planned_steps=1)["delta"] == 0.01
    with pytest.raises(ValueError, match="noise_multiplier must be finite"):
        dp_plan.DpPlan(
            num_units=100, expected_batch_size=10, noise_multiplier=float("nan"), l2_clip_norm=1, delta=1e-3
        )


def test_early_stopping_is_accounted_at_the_planned_steps():
    plan = dp_plan.DpPlan(
        num_units=1000, expected_batch_size=10, noise_multiplier=1.0, l2_clip_norm=1.0, delta=1e-4
    )
    report = plan.report(steps_run=40, planned_steps=100)
    assert report["steps"] == 40 and report["accounted_steps"] == 100
    assert report["epsilon_pld"] == pytest.approx(_pld_epsilon([_gaussian(0.01, 1.0, 100)], 1e-4), rel=2e-3)
