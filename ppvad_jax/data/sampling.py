"""Adaptive frame-rate sampling (paper, section 3.4.3).

Each maximal run of frames with the same label is sampled at that label's
rate: by default anomalous segments (hard and soft) at 3 FPS and normal ones at
10 FPS, i.e. every 10th and every 3rd frame of a 30 FPS source. Sampling
restarts at the first frame of every run, so a short anomaly is never skipped.
"""

import numpy as np

from ppvad_jax.data import ucf_layout

# Frames per second kept, per label (NORMAL, SOFT, HARD).
PAPER_FPS = {ucf_layout.NORMAL: 10.0, ucf_layout.SOFT: 3.0, ucf_layout.HARD: 3.0}


def stride_for(*, source_fps, target_fps):
    """Keep one frame in ``stride``; at least 1 (never upsample)."""
    if source_fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive: source {source_fps}, target {target_fps}")
    return max(1, round(source_fps / target_fps))


def adaptive_sample_indices(labels, *, source_fps, fps_by_label=None):
    """Indices (int64, increasing) of the frames to keep.

    Args:
      labels: int array [num_frames] of per-frame labels.
      source_fps: the video's frame rate.
      fps_by_label: ``{label: fps}``; defaults to the paper's ``PAPER_FPS``.
    """
    fps_by_label = PAPER_FPS if fps_by_label is None else fps_by_label
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros((0,), np.int64)
    run_starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    run_ends = np.r_[run_starts[1:], labels.size]
    chunks = []
    for start, end in zip(run_starts, run_ends, strict=True):
        label = int(labels[start])
        if label not in fps_by_label:
            raise ValueError(f"no sampling rate for label {label}; rates: {fps_by_label}")
        stride = stride_for(source_fps=source_fps, target_fps=fps_by_label[label])
        chunks.append(np.arange(start, end, stride))
    return np.concatenate(chunks).astype(np.int64)


def previous_indices(indices):
    """The previously sampled frame of each sampled frame (itself for the first)."""
    indices = np.asarray(indices)
    return np.r_[indices[:1], indices[:-1]].astype(np.int64)
