"""The paired video-level bootstrap of an FL-AUC difference, against sklearn on the same draws."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ppvad_jax.evaluation import auc_comparison


def _world(seed=0, videos=12, frames=20):
    rng = np.random.default_rng(seed)
    video = np.repeat(np.arange(videos), frames)
    labels = (rng.random(video.size) < 0.2) & (video % 3 != 0)  # a third of the videos are normal
    good = labels + rng.normal(scale=0.7, size=video.size)
    poor = labels * 0.2 + rng.normal(size=video.size)
    return labels, good, poor, video


def test_matches_an_independent_loop_with_sklearn():
    labels, good, poor, video = _world()
    got = auc_comparison.paired_video_bootstrap(labels, good, poor, video, replicates=200, seed=3)
    # The same draws, scored by sklearn.
    rng = np.random.default_rng(3)
    diffs = []
    for _ in range(200):
        idx = np.concatenate([np.flatnonzero(video == v) for v in rng.integers(12, size=12)])
        if labels[idx].all() or not labels[idx].any():
            continue
        diffs.append(roc_auc_score(labels[idx], good[idx]) - roc_auc_score(labels[idx], poor[idx]))
    assert got.replicates == len(diffs)
    np.testing.assert_allclose([got.low, got.high], np.percentile(diffs, [2.5, 97.5]), rtol=1e-12)
    assert got.fraction_a_above == pytest.approx(np.mean(np.array(diffs) > 0))
    assert got.auc_a == pytest.approx(roc_auc_score(labels, good))
    assert got.difference == pytest.approx(got.auc_a - got.auc_b)
    assert got.a_clearly_better and got.videos == 12


def test_same_scores_are_not_clearly_better_and_inputs_are_checked():
    labels, good, _, video = _world(1)
    same = auc_comparison.paired_video_bootstrap(labels, good, good, video, replicates=50)
    assert same.difference == 0 and same.low == same.high == 0 and not same.a_clearly_better
    with pytest.raises(ValueError, match="lengths differ"):
        auc_comparison.paired_video_bootstrap(labels, good[:-1], good, video)
    with pytest.raises(ValueError, match="at least two videos"):
        auc_comparison.paired_video_bootstrap(labels, good, good, np.zeros_like(video))
    with pytest.raises(ValueError, match="both classes"):
        auc_comparison.paired_video_bootstrap(np.zeros_like(labels), good, good, video)


def test_the_demo_report_says_clear_only_when_the_interval_excludes_zero():
    from ppvad_jax.pipelines.demo import report as demo_report

    labels, good, poor, video = _world(2)
    ahead = auc_comparison.paired_video_bootstrap(labels, good, poor, video, replicates=100).as_dict()
    assert ahead["a_clearly_better"] and "the classifier is clearly ahead" in demo_report.comparison_line(
        ahead
    )
    behind = auc_comparison.paired_video_bootstrap(labels, poor, good, video, replicates=100).as_dict()
    assert "motion energy is clearly ahead" in demo_report.comparison_line(behind)
    tie = dict(ahead, low=-0.1, high=0.2, a_clearly_better=False)
    assert "not a clear difference" in demo_report.comparison_line(tie)
    assert demo_report.comparison_line(None) == ""


def test_the_demo_verdict_needs_the_interval_above_zero_and_a_higher_vl_f1():
    from ppvad_jax.pipelines.demo import report as demo_report

    labels, good, poor, video = _world(3)
    ahead = auc_comparison.paired_video_bootstrap(labels, good, poor, video, replicates=100).as_dict()
    tie = dict(ahead, low=-0.1, high=0.2, a_clearly_better=False)
    baseline = {"vl_f1": 0.4}
    assert "clearly beats" in demo_report.verdict_line({"vl_f1": 0.5}, baseline, ahead)
    lower_f1 = demo_report.verdict_line({"vl_f1": 0.4}, baseline, ahead)
    assert "no clear win" in lower_f1 and "VL-F1" in lower_f1 and "interval" not in lower_f1
    assert "FL-AUC interval" in demo_report.verdict_line({"vl_f1": 0.9}, baseline, tie)
    assert "not computed" in demo_report.verdict_line({"vl_f1": 0.9}, None, None)
