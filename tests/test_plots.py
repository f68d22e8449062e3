"""Plots: PNG size, legend AUCs, and the timeline's shading read back from the pixels."""

import numpy as np
import pytest
from matplotlib import colors
from PIL import Image
from sklearn.metrics import roc_auc_score

from ppvad_jax.data.ucf_layout import HARD, NORMAL, SOFT
from ppvad_jax.evaluation import plots


def read_rgb(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.float64) / 255.0


def test_roc_png_size_and_aucs(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.3
    curves = {name: (labels, rng.normal(size=500) + shift * labels) for name, shift in
              [("No DP", 1.5), ("DP Adagrad Opt", 0.8), ("DP Adam Opt", 0.3)]}  # fmt: skip
    path = tmp_path / "sub" / "roc.png"
    aucs = plots.plot_roc_curves(curves, path, title="Figure 10", size=(4.0, 3.0), dpi=50)
    assert list(aucs) == list(curves)
    for name, (lab, scores) in curves.items():
        assert aucs[name] == pytest.approx(roc_auc_score(lab, scores), abs=1e-12)
    rgb = read_rgb(path)
    assert rgb.shape == (150, 200, 3)
    assert np.mean(np.ptp(rgb, axis=-1) > 0.3) > 0.001  # some saturated (curve) pixels, not a blank page


def test_timeline_shading_follows_labels(tmp_path):
    num_frames = 100
    labels = np.full(num_frames, NORMAL)
    labels[30:50] = SOFT
    labels[50:80] = HARD
    labels[90:95] = HARD
    rng = np.random.default_rng(1)
    confidence = rng.random(num_frames)
    score = np.clip(np.cumsum(confidence - 0.5) / 10 + 0.5, 0, 1)
    path = plots.plot_score_timeline(
        confidence, score, labels, tmp_path / "timeline.png", title="video", size=(10.0, 3.0), dpi=100
    )
    rgb = read_rgb(path)
    height, width, _ = rgb.shape
    assert (height, width) == (300, 1000)

    # Pixel of frame t's centre at y=1.07: above every curve (scores <= 1), inside the axes.
    left, bottom, ax_width, ax_height = plots.TIMELINE_AXES_RECT
    y_low, y_high = plots.TIMELINE_YLIM
    row = round((1 - (bottom + ax_height * (1.07 - y_low) / (y_high - y_low))) * height)

    def pixel(t):
        return rgb[row, round((left + ax_width * (t + 0.5) / num_frames) * width)]

    def shade(color):
        return (1 - plots.SHADE_ALPHA) * np.ones(3) + plots.SHADE_ALPHA * np.array(colors.to_rgb(color))

    for t in range(1, num_frames - 1):
        if labels[t - 1] != labels[t] or labels[t + 1] != labels[t]:
            continue  # span edges are anti-aliased
        want = {NORMAL: np.ones(3), SOFT: shade(plots.SOFT_COLOR), HARD: shade(plots.HARD_COLOR)}[labels[t]]
        np.testing.assert_allclose(pixel(t), want, atol=0.03, err_msg=f"frame {t}, label {labels[t]}")
    # The two shades really differ (dark red has far less green than orange).
    assert pixel(60)[1] < pixel(40)[1] - 0.15


def test_timeline_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="lengths differ"):
        plots.plot_score_timeline([0.1] * 3, [0.2] * 3, [NORMAL] * 4, tmp_path / "x.png")
