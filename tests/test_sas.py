"""Sigmoidal anomaly score: the compiled scans against a float64 Python loop and hand values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppvad_jax.evaluation import sas

COMPILED = ("associative", "sequential")
# The associative scan takes seconds to compile on a 2-core CPU, once per [videos, T] shape
# (leading dims are flattened; parameters are traced): tests reuse the shapes (5,), (3, 257),
# (2, 100_000) and one jitted wrapper.
SHORT, MEDIUM, LONG = (5,), (3, 257), (2, 100_000)
jitted_score = jax.jit(
    sas.sigmoidal_anomaly_score, static_argnames=("tau", "nu", "lower", "upper", "initial", "method")
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def all_methods(confidence, **params):
    return {m: np.asarray(sas.sigmoidal_anomaly_score(confidence, method=m, **params)) for m in sas.METHODS}


@pytest.mark.parametrize(
    "shape, params",
    [
        (SHORT, {}),
        (MEDIUM, {"tau": 0.3, "nu": 0.5}),
        ((1, 3, 257), {"tau": 0.8, "nu": 5.0, "lower": -3.0, "upper": 10.0, "initial": 0.0}),
        (LONG, {}),
        (LONG, {"tau": 0.0, "nu": 0.1, "initial": 2.0}),
    ],
)
def test_methods_agree_on_random_input(shape, params):
    rng = np.random.default_rng(sum(shape) + len(params))
    # Mix uniform noise with long confident runs, so the accumulator both wanders inside
    # the bounds and sits on them.
    runs = np.repeat(rng.random(shape[:-1] + (shape[-1] // 50 + 1,)) < 0.5, 50, axis=-1)[..., : shape[-1]]
    confidence = np.where(rng.random(shape) < 0.7, rng.random(shape), runs).astype(np.float32)
    scores = all_methods(confidence, **params)
    for method in COMPILED:
        assert scores[method].shape == shape and scores[method].dtype == np.float32
        np.testing.assert_allclose(scores[method], scores["python"], rtol=0, atol=2e-5, err_msg=method)
    np.testing.assert_allclose(scores["associative"], scores["sequential"], rtol=0, atol=2e-5)


def test_hand_computed_paper_parameters():
    # tau=0.5, nu=2: the step is 2 * (2 sigma - 1). From LB=-7 four full-confidence frames
    # reach +1; then 0.25 steps by -2 * (1 - 0.25 - 0.5) / 0.5 = -1.
    expected = sigmoid([-5.0, -3.0, -1.0, 1.0, 0.0])
    for method, got in all_methods([1.0, 1.0, 1.0, 1.0, 0.25]).items():
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=method)


def test_hand_computed_both_branches_and_clip():
    # tau=0.6, nu=2, start 0, UB=3.2:
    #   0.9 >= tau: +2 * 0.3 / 0.4 = +1.5 -> 1.5
    #   0.6 == tau: +0                    -> 1.5
    #   0.3 <  tau: -2 * 0.1 / 0.4 = -0.5 -> 1.0
    #   1.0 >= tau: +2 * 0.4 / 0.4 = +2   -> 3.0
    #   0.5 <  tau: -2 * (-0.1) / 0.4 = +0.5 (the paper's formula rises here) -> 3.5, clipped to 3.2
    expected = sigmoid([1.5, 1.5, 1.0, 3.0, 3.2])
    params = {"tau": 0.6, "nu": 2.0, "upper": 3.2, "initial": 0.0}
    for method, got in all_methods([0.9, 0.6, 0.3, 1.0, 0.5], **params).items():
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=method)


def test_tau_zero_only_rises():
    # tau=0: every frame adds nu * sigma, so x_t = min(LB + nu * cumsum(sigma), UB).
    confidence = np.random.default_rng(1).random(MEDIUM).astype(np.float32) * 0.2
    expected = sigmoid(np.minimum(-7.0 + 0.5 * np.cumsum(confidence.astype(np.float64), axis=-1), 7.0))
    for method, got in all_methods(confidence, tau=0.0, nu=0.5).items():
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5, err_msg=method)


@pytest.mark.parametrize("tau", [0.0, 0.25, 0.5, 0.75])
def test_confidence_exactly_at_tau_holds_the_score(tau):
    confidence = np.full(MEDIUM, tau, np.float32)
    for method, got in all_methods(confidence, tau=tau, initial=1.5).items():
        np.testing.assert_allclose(got, sigmoid(1.5), rtol=0, atol=1e-6, err_msg=method)


@pytest.mark.parametrize("method", COMPILED)
def test_saturates_exactly_at_both_bounds(method):
    # 50,000 frames of 1.0 then 50,000 of 0.0, asymmetric bounds: x climbs from 0 by 2 per
    # frame, reaches UB=10 at frame 4 and must sit there *exactly* (no drift from the large
    # running sums in the associative scan), then falls by 2 per frame to LB=-3 and sits there.
    half = LONG[1] // 2
    confidence = np.r_[np.ones(half), np.zeros(half)].astype(np.float32)[None].repeat(2, 0)
    got = np.asarray(
        sas.sigmoidal_anomaly_score(confidence, lower=-3.0, upper=10.0, initial=0.0, method=method)
    )
    top, bottom = (np.asarray(jax.nn.sigmoid(jnp.float32(v))) for v in (10.0, -3.0))
    np.testing.assert_allclose(got[:, :4], np.broadcast_to(sigmoid([2.0, 4.0, 6.0, 8.0]), (2, 4)), atol=1e-6)
    assert np.all(got[:, 4:half] == top)
    np.testing.assert_allclose(
        got[:, half : half + 6], np.broadcast_to(sigmoid([8, 6, 4, 2, 0, -2]), (2, 6)), atol=1e-6
    )
    assert np.all(got[:, half + 7 :] == bottom)


def test_auto_is_sequential_on_cpu_and_works_under_jit():
    confidence = np.random.default_rng(2).random(MEDIUM).astype(np.float32)
    auto = np.asarray(sas.sigmoidal_anomaly_score(confidence))
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(auto, sas.sigmoidal_anomaly_score(confidence, method="sequential"))
    for method in COMPILED:
        got = jitted_score(confidence[0, :5], method=method)
        np.testing.assert_allclose(got, auto[0, :5], rtol=0, atol=2e-5, err_msg=method)


def test_nan_raises_outside_jit_and_propagates_forward_inside():
    confidence = np.full((2, 5), 0.9, np.float32)
    confidence[1, 2] = np.nan
    for method in sas.METHODS:
        with pytest.raises(ValueError, match=r"NaN value\(s\), first at index \(1, 2\)"):
            sas.sigmoidal_anomaly_score(confidence, method=method)
    for method in COMPILED:
        got = np.stack([np.asarray(jitted_score(row, method=method)) for row in confidence])
        assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1, :2])), method
        assert np.all(np.isnan(got[1, 2:])), method


def test_bad_arguments():
    ok = np.full(4, 0.5, np.float32)
    for tau in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=f"tau must be in \\[0, 1\\), got {tau}"):
            sas.sigmoidal_anomaly_score(ok, tau=tau)
    with pytest.raises(ValueError, match="nu must be"):
        sas.sigmoidal_anomaly_score(ok, nu=0.0)
    with pytest.raises(ValueError, match="lower <= upper"):
        sas.sigmoidal_anomaly_score(ok, lower=1.0, upper=-1.0)
    with pytest.raises(ValueError, match="initial must be in"):
        sas.sigmoidal_anomaly_score(ok, initial=8.0)
    with pytest.raises(ValueError, match="method must be one of"):
        sas.sigmoidal_anomaly_score(ok, method="fast")
    with pytest.raises(ValueError, match="in \\[0, 1\\], got values in \\[-0.5, 0.5\\]"):
        sas.sigmoidal_anomaly_score(np.array([0.5, -0.5]))
    with pytest.raises(ValueError, match="frame axis"):
        sas.sigmoidal_anomaly_score(0.5)
    with pytest.raises(ValueError, match="cannot run under jit"):
        jitted_score(ok, method="python")


def test_empty_video():
    for method, got in all_methods(np.zeros((3, 0), np.float32)).items():
        assert got.shape == (3, 0), method
