"""Latent local DP: clipping, noise, the per-frame epsilon against the analytic Gaussian mechanism."""

import ast
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppvad_jax.privacy import latent_ldp

SOURCE = pathlib.Path(latent_ldp.__file__)


def _phi(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def analytic_gaussian_epsilon(sensitivity_over_std, delta):
    """Balle and Wang (2018), Theorem 8: the exact epsilon of the Gaussian mechanism at delta.

    delta(eps) = Phi(a / 2 - eps / a) - exp(eps) Phi(-a / 2 - eps / a), a = sensitivity / std,
    decreasing in eps; solved by bisection. Written here from the paper, independently of dp_accounting.
    """
    a = sensitivity_over_std

    def delta_of(eps):
        return _phi(a / 2 - eps / a) - math.exp(eps) * _phi(-a / 2 - eps / a)

    lo, hi = 0.0, 1.0
    while delta_of(hi) > delta:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


def test_clipping_bounds_the_norm_and_keeps_small_latents():
    rng = np.random.default_rng(0)  # numpy inputs: each eager jax.random call is one more compile
    latent = jnp.asarray(rng.normal(size=(6, 4, 5, 16)) * np.arange(1, 7)[:, None, None, None], jnp.float32)
    for nonnegative in (False, True):
        clipped = np.asarray(latent_ldp.clip_latent(latent, l2_bound=3.0, nonnegative=nonnegative))
        norms = np.linalg.norm(clipped.reshape(6, -1), axis=1)
        assert np.all(norms <= 3.0 * (1 + 1e-6))
        if nonnegative:
            assert clipped.min() >= 0
    small = latent * 1e-3
    np.testing.assert_allclose(
        latent_ldp.clip_latent(small, l2_bound=3.0, nonnegative=False), small, rtol=1e-6
    )
    zero = jnp.zeros((2, 3, 3, 4))
    np.testing.assert_array_equal(latent_ldp.clip_latent(zero, l2_bound=1.0), zero)


def test_privatize_is_off_by_default_and_adds_the_stated_noise():
    latent = jnp.asarray(np.abs(np.random.default_rng(1).normal(size=(64, 8, 8, 16))), jnp.float32)
    key = jax.random.key(2)
    np.testing.assert_array_equal(
        latent_ldp.privatize_latent(latent, key, latent_ldp.LatentLdpConfig()), latent
    )
    config = latent_ldp.LatentLdpConfig(enabled=True, l2_bound=2.0, noise_multiplier=0.7)
    released = latent_ldp.privatize_latent(latent, key, config)
    noise = np.asarray(released - latent_ldp.clip_latent(latent, l2_bound=2.0))
    # 65,536 draws: the std is within 1% of sigma C = 1.4 (its standard error is 0.3%).
    assert noise.std() == pytest.approx(1.4, rel=0.01) and abs(noise.mean()) < 0.02
    # Frames get independent noise; a key gives the same noise again, another key other noise.
    assert abs(np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1]) < 0.1
    np.testing.assert_array_equal(latent_ldp.privatize_latent(latent, key, config), released)
    assert not np.allclose(latent_ldp.privatize_latent(latent, jax.random.key(3), config), released)
    # Jittable inside a larger program (the config is static).
    step = jax.jit(lambda z, k: latent_ldp.privatize_latent(z, k, config) * 2)
    np.testing.assert_allclose(step(latent, key), 2 * released, rtol=1e-6)
    with pytest.raises(ValueError, match="leading frame axis"):
        latent_ldp.privatize_latent(jnp.zeros(5), key, config)
    with pytest.raises(ValueError, match="l2_bound"):
        latent_ldp.LatentLdpConfig(l2_bound=0.0)


def test_epsilon_decreases_with_noise_and_rdp_is_looser():
    eps = []
    for sigma in (0.5, 1.0, 2.0, 4.0):
        record = latent_ldp.epsilon(latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=sigma))
        assert record["epsilon_rdp"] >= record["epsilon_pld"]
        eps.append(record["epsilon_pld"])
    assert all(a > b for a, b in zip(eps, eps[1:], strict=False))
    assert math.isinf(latent_ldp.epsilon(latent_ldp.LatentLdpConfig(noise_multiplier=0.0))["epsilon_pld"])


@pytest.mark.parametrize("sigma,nonnegative", [(0.8, True), (2.0, True), (1.5, False)])
def test_epsilon_agrees_with_the_analytic_gaussian_mechanism(sigma, nonnegative):
    config = latent_ldp.LatentLdpConfig(
        enabled=True, l2_bound=5.0, noise_multiplier=sigma, nonnegative=nonnegative, delta=1e-6
    )
    record = latent_ldp.epsilon(config)
    # Sensitivity / std: any two clipped latents are at most sqrt(2) C (non-negative) or 2 C apart.
    ratio = (math.sqrt(2.0) if nonnegative else 2.0) / sigma
    assert record["sensitivity"] / (sigma * 5.0) == pytest.approx(ratio)
    exact = analytic_gaussian_epsilon(ratio, 1e-6)
    # PLD is a pessimistic (upper) estimate, within 1e-3 relative of the exact value.
    assert exact * (1 - 1e-9) <= record["epsilon_pld"] <= exact * (1 + 1e-3)


def test_composition_over_frames_and_calibration():
    base = latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=2.0)
    # k composed Gaussians are one Gaussian with sigma / sqrt(k).
    composed = latent_ldp.epsilon(base, frames=4)["epsilon_pld"]
    single = latent_ldp.epsilon(latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=1.0))["epsilon_pld"]
    assert composed == pytest.approx(single, rel=1e-3)
    sigma = latent_ldp.calibrate_noise_multiplier(target_epsilon=2.0, delta=1e-5)
    eps = latent_ldp.epsilon(latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=sigma))["epsilon_pld"]
    assert 2.0 * (1 - 1e-3) <= eps <= 2.0
    assert analytic_gaussian_epsilon(math.sqrt(2.0) / sigma, 1e-5) == pytest.approx(2.0, rel=2e-3)


def test_privacy_package_does_not_import_training_serving_or_launch():
    tree = ast.parse(SOURCE.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.startswith(("ppvad_jax.training", "ppvad_jax.serving", "launch"))]
