"""Epsilon against published values (shared/reference/epsilon_values.md) and the CLI."""

import json
import math
import pathlib
import subprocess
import sys

import dp_accounting
import pytest
from scipy import optimize, stats

from ppvad_jax.privacy import accounting

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (q, sigma, steps, delta, epsilon, accountant, source)
PUBLISHED = [
    (150 / 60000, 1.3, 6000, 1e-5, 0.7242, "rdp", "tensorflow/privacy compute_dp_sgd_privacy_test Test0"),
    (0.04, 1.5, 2250, 1e-5, 7.32933, "rdp", "dp_accounting RDP (Opacus RDP 7.32911)"),
    (0.04, 1.5, 2250, 1e-5, 6.77, "pld", "Opacus PRV 6.777"),
    (0.1, 3.0, 512, 1e-6, 4.05, "rdp", "jax_privacy accounting doctest"),
    (0.1, 3.0, 512, 1e-6, 3.77, "pld", "jax_privacy accounting doctest"),
]


@pytest.mark.parametrize("q, sigma, steps, delta, epsilon, accountant, source", PUBLISHED)
def test_published_values(q, sigma, steps, delta, epsilon, accountant, source):
    params = accounting.DpParams(sigma, q, steps, delta)
    if accountant == "rdp":
        got, order = accounting.epsilon_rdp(params)
        # Our order grid contains every order of TF Privacy's, so never looser than its 0.7242.
        if "tensorflow" in source:
            assert got <= epsilon + 1e-4, source
        assert got == pytest.approx(epsilon, rel=2e-3), source
    else:
        assert accounting.epsilon_pld(params) == pytest.approx(epsilon, rel=5e-3), source


def _analytic_gaussian_epsilon(mu, delta):
    """Exact epsilon of a Gaussian mechanism with sensitivity/std ``mu`` (Balle & Wang 2018, Thm 8)."""

    def delta_of(eps):
        return stats.norm.cdf(mu / 2 - eps / mu) - math.exp(eps) * stats.norm.cdf(-mu / 2 - eps / mu)

    return optimize.brentq(lambda e: delta_of(e) - delta, 0.0, 100.0, xtol=1e-10)


@pytest.mark.parametrize("sigma, steps, delta", [(2.0, 16, 1e-5), (5.0, 100, 1e-6), (1.0, 1, 1e-5)])
def test_pld_matches_the_analytic_gaussian_at_full_batch(sigma, steps, delta):
    """Guards the circular accounting row: q = 1 makes the mechanism a plain Gaussian,
    and T Gaussians of multiplier sigma compose exactly to one of multiplier sigma / sqrt(T),
    whose epsilon has a closed form: an answer that owes nothing to dp_accounting."""
    exact = _analytic_gaussian_epsilon(math.sqrt(steps) / sigma, delta)
    got = accounting.epsilon_pld(accounting.DpParams(sigma, 1.0, steps, delta))
    assert exact <= got <= exact * 1.002 + 1e-4  # PLD is a pessimistic upper bound, and tight


def test_optimal_order_of_the_tf_privacy_row():
    _, order = accounting.epsilon_rdp(accounting.DpParams(1.3, 150 / 60000, 6000, 1e-5))
    assert order == 19


def test_calibration_reproduces_jax_privacy():
    sigma = accounting.calibrate_noise_multiplier(
        target_epsilon=1.0, sampling_rate=0.1, steps=512, delta=1e-6
    )
    assert sigma == pytest.approx(9.66, rel=2e-3)
    eps = accounting.epsilon_pld(accounting.DpParams(sigma, 0.1, 512, 1e-6))
    assert eps <= 1.0 + 1e-3


def test_low_noise_is_reported_as_it_is():
    # The paper's sigma = 0.1 (N=10k, batch 100, 50 epochs): thousands, not a small number.
    params = accounting.DpParams(0.1, 0.01, 5000, 1e-5)
    assert accounting.epsilon_pld(params) == pytest.approx(3.7e3, rel=0.02)
    eps_rdp, order = accounting.epsilon_rdp(params)
    assert eps_rdp > accounting.epsilon_pld(params) and order < 1.1  # bottom of the grid


def test_no_noise_means_no_privacy():
    params = accounting.DpParams(0.0, 0.1, 10, 1e-5)
    assert accounting.epsilon_rdp(params)[0] == math.inf
    assert accounting.epsilon_pld(params) == math.inf


def test_bad_parameters():
    with pytest.raises(ValueError, match="sampling_rate"):
        accounting.DpParams(1.0, 0.0, 10, 1e-5)
    with pytest.raises(ValueError, match="delta"):
        accounting.DpParams(1.0, 0.1, 10, 1.5)
    assert accounting.default_delta(50_000) == 1e-5
    assert accounting.default_delta(2_000_000) == 1e-7


def run_cli(*args):
    done = subprocess.run(
        [sys.executable, "-m", "launch.epsilon", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return done


def test_cli_prints_one_json_object():
    done = run_cli("--noise_multiplier=1.5", "--sampling_rate=0.04", "--steps=2250", "--delta=1e-5")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["epsilon_rdp"] == pytest.approx(7.32933, rel=1e-4)
    assert out["epsilon_pld"] == pytest.approx(6.77, rel=5e-3)
    assert out["rdp_order"] > 1 and out["unit_of_privacy"] == "frame" and out["sampling"] == "poisson"


def test_cli_calibrates():
    done = run_cli("--target_epsilon=1", "--sampling_rate=0.1", "--steps=512", "--delta=1e-6")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["noise_multiplier"] == pytest.approx(9.66, rel=2e-3)
    assert run_cli("--sampling_rate=0.1", "--steps=5").returncode != 0  # neither sigma nor target


def test_cli_refuses_a_non_finite_noise_multiplier():
    """Guards a fixed defect: nan used to print epsilon nan with exit 0."""
    done = run_cli("--noise_multiplier=nan", "--sampling_rate=0.1", "--steps=5")
    assert done.returncode != 0 and "noise_multiplier must be finite" in done.stderr


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_cli_with_the_run_numbers_accounts_the_frame_pair_and_mining():
    """With --num_units the CLI is the trainers' plan: a record pair per frame (rate 1-(1-q)^2)
    and top-K mining (2C per record) give an event of sigma / 4, composed here by hand."""
    done = run_cli(
        "--noise_multiplier=2", "--num_units=3000", "--expected_batch_size=96", "--records_per_unit=2",
        "--selection_factor=2", "--steps=300", "--delta=1e-4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    q = 96 / 3000
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(1 - (1 - q) ** 2, dp_accounting.GaussianDpEvent(0.5)), 300
    )
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4).compose(event)
    assert json.loads(done.stdout)["epsilon_pld"] == pytest.approx(pld.get_epsilon(1e-4), rel=2e-3)
    big = run_cli("--noise_multiplier=1", "--num_units=50", "--expected_batch_size=60", "--steps=5")
    assert big.returncode != 0 and "expected batch size 60" in big.stderr  # B > N refused
