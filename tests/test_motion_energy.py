"""Motion energy scored like the classifier, and the within-anomalous AUC, against sklearn."""

import numpy as np
import pytest
from scipy import special
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ppvad_jax.evaluation import anomaly_report, motion_energy


def _overlapping(rng, n):
    y = rng.random(n) < 0.3
    return rng.normal(1.0 + 1.5 * y, 1.0), y


@pytest.mark.parametrize("weight", [2.0, None])
def test_calibration_is_the_weighted_logistic_regression_of_sklearn(weight):
    x, y = _overlapping(np.random.default_rng(0), 400)
    a, b = motion_energy.fit_logistic(x, y, positive_weight=weight)
    ref = LogisticRegression(
        C=np.inf, tol=1e-10, max_iter=10_000, class_weight=None if weight else "balanced"
    )
    ref.fit(x[:, None], y, sample_weight=np.where(y, weight, 1.0) if weight else None)
    np.testing.assert_allclose([a, b], [ref.coef_[0, 0], ref.intercept_[0]], rtol=1e-4, atol=1e-5)


def _split(rng, videos, frames):
    """Classifier-input-like fields: flows whose magnitude channel is higher in hard frames."""
    labels = np.zeros((videos, frames), np.int8)
    labels[videos // 2 :, frames // 3 : frames // 2] = 2
    labels[videos // 2 :, frames // 2 :] = 1
    flows = rng.random((videos * frames, 4, 4, 3)).astype(np.float32)
    flows[..., 2] += 0.4 * (labels.ravel() == 2)[:, None, None]
    names = [f"Normal_Videos_{i:03d}" if i < videos // 2 else f"Arson{i:03d}" for i in range(videos)]
    return {
        "flows": flows, "labels": labels.ravel(), "video_index": np.repeat(np.arange(videos), frames),
        "frame_index": np.tile(np.arange(frames), videos), "videos": names,
    }  # fmt: skip


def test_calibrated_baseline_keeps_the_raw_energys_auc_and_is_fitted_on_validation_only():
    rng = np.random.default_rng(1)
    validation, test = _split(rng, 6, 30), _split(rng, 8, 30)
    predictions = motion_energy.calibrated_predictions(validation, test)
    hard = test["labels"] == 2
    raw = test["flows"][..., 2].reshape(len(hard), -1).mean(axis=1)
    assert roc_auc_score(hard, predictions["confidence"]) == pytest.approx(roc_auc_score(hard, raw), abs=1e-9)
    a, b = motion_energy.fit_logistic(motion_energy.energy(validation["flows"]), validation["labels"] == 2)
    np.testing.assert_allclose(predictions["confidence"], special.expit(a * raw + b), rtol=1e-5, atol=1e-7)
    one_class = {**validation, "labels": np.zeros_like(validation["labels"])}
    with pytest.raises(ValueError, match="both classes"):
        motion_energy.calibrated_predictions(one_class, test)


def test_within_anomalous_auc_ignores_normal_videos():
    rng = np.random.default_rng(2)
    test = _split(rng, 8, 30)
    confidence = (0.7 * rng.random(len(test["labels"])) + 0.3 * (test["labels"] == 2)).astype(np.float32)
    normal_video = test["video_index"] < 4
    confidence[normal_video] = 1.0  # every normal frame at the top: FL-AUC falls
    predictions = {k: np.asarray(v) for k, v in test.items() if k != "flows"} | {"confidence": confidence}
    result = anomaly_report.score(predictions)
    inside = ~normal_video
    expected = roc_auc_score(test["labels"][inside] == 2, confidence[inside])
    assert result["within_anomalous_auc"] == pytest.approx(expected, abs=1e-9)
    assert result["fl_auc"] == pytest.approx(roc_auc_score(test["labels"] == 2, confidence), abs=1e-9)
    assert result["fl_auc"] < 0.5 < result["within_anomalous_auc"]
