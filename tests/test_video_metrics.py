"""FL-AUC, ROC curve and VL-F1 against scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics

from ppvad_jax.data.ucf_layout import HARD, NORMAL, SOFT
from ppvad_jax.evaluation import sas, video_metrics


def random_labels_and_scores(seed, n, coarse):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    labels[:2] = True, False
    scores = rng.normal(size=n) + labels
    return labels, np.round(scores, 1) if coarse else scores  # coarse: many ties


@pytest.mark.parametrize("drop_intermediate", [True, False])
@pytest.mark.parametrize("seed, n, coarse", [(0, 2, False), (1, 7, True), (2, 300, False), (3, 2000, True)])
def test_roc_curve_matches_sklearn(seed, n, coarse, drop_intermediate):
    labels, scores = random_labels_and_scores(seed, n, coarse)
    got = video_metrics.roc_curve(labels, scores, drop_intermediate=drop_intermediate)
    want = metrics.roc_curve(labels, scores, drop_intermediate=drop_intermediate)
    for name, g, w in zip(("fpr", "tpr", "thresholds"), got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12, err_msg=name)


def test_frame_level_auc_pools_ragged_videos():
    rng = np.random.default_rng(4)
    lengths = [5, 40, 1, 17]
    labels = [rng.random(n) < 0.4 for n in lengths]
    scores = [rng.random(n) + lab for n, lab in zip(lengths, labels, strict=True)]
    pooled_labels, pooled_scores = np.concatenate(labels), np.concatenate(scores)
    auc = video_metrics.frame_level_auc(labels, scores)
    assert auc == pytest.approx(metrics.roc_auc_score(pooled_labels, pooled_scores), abs=1e-12)
    fpr, tpr, _ = video_metrics.roc_curve(labels, scores)
    assert auc == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)  # the curve has the same area


def test_frame_positives_soft_is_normal_by_default():
    labels = np.array([NORMAL, SOFT, HARD, SOFT])
    np.testing.assert_array_equal(video_metrics.frame_positives(labels), [False, False, True, False])
    np.testing.assert_array_equal(
        video_metrics.frame_positives(labels, soft_is_anomalous=True), [False, True, True, True]
    )
    with pytest.raises(ValueError, match="frame labels must be in"):
        video_metrics.frame_positives([0, 3])
    assert list(video_metrics.video_is_anomalous([[NORMAL] * 3, [NORMAL, SOFT], [HARD]])) == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_video_level_f1_matches_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    num_videos = 40
    truth = rng.random(num_videos) < 0.4
    scores = [rng.random(rng.integers(1, 60)) * (0.7 + 0.3 * t) for t in truth]  # ragged videos
    predicted = np.array([s.max() > threshold for s in scores])  # the paper's rule, written out
    got = video_metrics.video_level_f1(truth, scores, threshold=threshold)
    assert got["f1"] == pytest.approx(metrics.f1_score(truth, predicted, zero_division=0), abs=1e-12)
    assert got["precision"] == pytest.approx(
        metrics.precision_score(truth, predicted, zero_division=0), abs=1e-12
    )
    assert got["recall"] == pytest.approx(metrics.recall_score(truth, predicted, zero_division=0), abs=1e-12)
    confusion = metrics.confusion_matrix(truth, predicted, labels=[False, True])
    assert [got["tn"], got["fp"], got["fn"], got["tp"]] == confusion.ravel().tolist()


def test_video_threshold_is_strict_and_edge_cases():
    # "exceeds 0.5": a video whose score touches 0.5 exactly is normal.
    assert list(video_metrics.video_predictions([[0.1, 0.5], [0.5, 0.50001]])) == [False, True]
    none_anomalous = video_metrics.video_level_f1([False, False], [[0.9], [0.1]])
    assert none_anomalous == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "tp": 0, "fp": 1, "fn": 0, "tn": 1}
    with pytest.raises(ValueError, match="3 video labels for 2 videos"):
        video_metrics.video_level_f1([True, False, True], [[0.9], [0.1]])


def test_vl_f1_from_confidences_through_sas():
    # Anomalous videos hold confidence 0.9 for 6 frames (+1.6 each from LB=-7: crosses 0 at
    # the 5th); normal ones have isolated spikes of 1.0 that the score absorbs.
    normal = np.tile([0.1, 0.1, 1.0], 20)
    anomalous = np.r_[np.full(20, 0.1), np.full(6, 0.9), np.full(34, 0.1)]
    confidence = np.stack([normal, anomalous, normal, anomalous])
    scores = np.asarray(sas.sigmoidal_anomaly_score(confidence))
    assert scores[0].max() < 0.5 < scores[1].max()
    result = video_metrics.video_level_f1([False, True, False, True], scores)
    assert (result["f1"], result["tp"], result["fp"]) == (1.0, 2, 0)
    # The raw confidence would flag every video: the reason for the SAS.
    assert video_metrics.video_level_f1([False, True, False, True], confidence)["precision"] == 0.5
