"""Table 1's markdown (ours next to the paper's, with each row's epsilons) and its flag parsing."""

import ml_collections
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ppvad_jax.pipelines import table1
from ppvad_jax.training import classifier


def test_table_lines_put_ours_next_to_the_papers_with_each_rows_epsilons():
    base = ml_collections.ConfigDict({"autoencoder_workdir": ""})
    private = {"fl_auc": 0.8, "vl_f1": 0.5, "classifier_privacy": {"epsilon_pld": 2.0}, "detector": "classic",
               "backbone_random_init": True, "autoencoder_privacy": None}  # fmt: skip
    plain = {"fl_auc": None, "vl_f1": 0.25, "classifier_privacy": {"epsilon_pld": None}}
    lines = table1.table_lines({"2s_bag": private, "1s_bag": plain}, base)
    assert lines[2] == "| 2s_bag | 80.0 | 82.6 | 50.0 | 66.7 | 2.00 | no autoencoder |"
    assert lines[3] == "| 1s_bag | n/a | 78.6 | 25.0 | 74.1 | not private | no autoencoder |"
    assert lines[5] == "Autoencoder: none (clear frames); its privacy: null."
    assert lines[6] == "Backbone random init: True; detector: classic."
    assert set(table1.VARIANTS) == set(table1.PAPER)


def test_autoencoders_flag_is_checked_before_anything_is_trained():
    assert table1.parse_autoencoders(["no_dp=runs/a", "dp=runs/b"]) == {"no_dp": "runs/a", "dp": "runs/b"}
    with pytest.raises(ValueError, match="expects name=workdir, got 'bad'"):
        table1.parse_autoencoders(["bad"])


def _predictions(rng, labels, video, signal):
    """A variant's predictions.npz contents: confidences that separate hard frames by ``signal``."""
    conf = 1 / (1 + np.exp(-(signal * (labels == classifier.HARD) + rng.normal(0, 1, labels.size))))
    return {"labels": labels, "video_index": video, "frame_index": np.arange(labels.size), "confidence": conf}


def test_each_ablation_gets_its_difference_interval_and_the_papers_sign():
    rng = np.random.default_rng(0)
    video = np.repeat(np.arange(20), 30)
    labels = np.where((video % 2 == 1) & (np.arange(600) % 30 >= 10), classifier.HARD, classifier.NORMAL)
    preds = {
        "2s_bag": _predictions(rng, labels, video, 3.0),
        "2s_no_bag": _predictions(rng, labels, video, 0.5),  # the bag helps, as in the paper
        "1s_bag": _predictions(rng, labels, video, 4.0),  # one stream beats two: the paper's sign reversed
    }
    rows = {(r["a"], r["b"]): r for r in table1.ablations(preds)}
    assert set(rows) == {("2s_bag", "2s_no_bag"), ("2s_bag", "1s_bag")}  # only pairs that both ran
    bag = rows[("2s_bag", "2s_no_bag")]
    hard = labels == classifier.HARD
    want = roc_auc_score(hard, preds["2s_bag"]["confidence"]) - roc_auc_score(
        hard, preds["2s_no_bag"]["confidence"]
    )
    assert bag["difference"] == pytest.approx(want, abs=1e-12)
    assert bag["paper_difference_pct"] == pytest.approx(82.6 - 77.6)
    assert bag["sign_matches"] and bag["clear"] and bag["low"] > 0
    streams = rows[("2s_bag", "1s_bag")]
    assert streams["difference"] < 0 and not streams["sign_matches"] and not streams["clear"]
    lines = table1.ablation_lines(list(rows.values()))
    assert lines[3].startswith("| bag of objects (2S) | 2s_bag - 2s_no_bag | +5.0 | +") and lines[3].endswith(
        "| yes | yes |"
    )


def test_an_ablation_on_different_test_frames_is_refused():
    rng = np.random.default_rng(1)
    video = np.repeat(np.arange(4), 10)
    labels = np.where(video >= 2, classifier.HARD, classifier.NORMAL)
    a, b = _predictions(rng, labels, video, 1.0), _predictions(rng, labels, video, 1.0)
    b["frame_index"] = b["frame_index"] + 1
    with pytest.raises(ValueError, match="2s_bag and 2s_no_bag were scored on different test frames"):
        table1.ablations({"2s_bag": a, "2s_no_bag": b})
