import numpy as np
import pytest

from ppvad_jax.data import sampling, ucf_layout

N, S, H = ucf_layout.NORMAL, ucf_layout.SOFT, ucf_layout.HARD


def test_paper_rates_at_30_fps():
    normal = sampling.adaptive_sample_indices(np.full(300, N), source_fps=30)
    hard = sampling.adaptive_sample_indices(np.full(300, H), source_fps=30)
    assert len(normal) == 100  # 10 FPS: every 3rd frame
    assert len(hard) == 30  # 3 FPS: every 10th frame
    np.testing.assert_array_equal(hard[:3], [0, 10, 20])


def test_rate_restarts_at_every_segment():
    labels = np.r_[np.full(25, S), np.full(7, H), np.full(28, S)]
    indices = sampling.adaptive_sample_indices(labels, source_fps=30)
    # A hard run of 7 frames is still sampled (its first frame), each run from its start.
    expected = np.r_[np.arange(0, 25, 10), np.arange(25, 32, 10), np.arange(32, 60, 10)]
    np.testing.assert_array_equal(indices, expected)
    assert H in labels[indices]


def test_custom_rates_and_slow_sources():
    labels = np.full(100, N)
    assert len(sampling.adaptive_sample_indices(labels, source_fps=30, fps_by_label={N: 30})) == 100
    # A 5 FPS source is never upsampled.
    assert len(sampling.adaptive_sample_indices(labels, source_fps=5)) == 100
    with pytest.raises(ValueError, match="no sampling rate"):
        sampling.adaptive_sample_indices(labels, source_fps=30, fps_by_label={H: 3})


def test_previous_indices():
    np.testing.assert_array_equal(sampling.previous_indices([4, 7, 17]), [4, 4, 7])
    assert sampling.adaptive_sample_indices(np.zeros(0), source_fps=30).size == 0
