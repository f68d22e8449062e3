"""Per-frame anomaly confidence on the server: the ``FrameScorer`` protocol.

The server needs something that maps a batch of reconstructions and flows to a
confidence in [0, 1] per frame. This module fixes that interface, a registry of
scorers by name, and one baseline:

- ``MotionEnergyScorer`` (a baseline, not the paper's model): the mean optical
  flow magnitude of the frame through a logistic. It measures how much moves,
  not whether what moves is anomalous (BUILD_NOTES.md measures total motion on
  the synthetic world). It lets the serving stack run without a trained
  classifier, and tests force alerts with it (a negative midpoint makes every
  frame look anomalous).

The paper's scorer, the trained two-stream classifier, is
``two_stream_scorer`` (``scorer.name="two_stream"`` in configs/serve.py). A new
scorer is a class with ``name`` and ``__call__(batch) -> [N] float`` that pads
its jitted forward pass to the engine's bucket sizes (no recompiles), may have
``warmup(frame_shape, buckets)`` (the server calls it at start-up), and is registered
with ``register_scorer(name, factory)``; ``factory(config)`` receives
``config.scorer``.
"""

import math
from typing import NamedTuple, Protocol

import numpy as np


class FrameBatch(NamedTuple):
    """What a scorer sees for N frames, from any mix of cameras.

    reconstructions: uint8 [N, H, W, 3], the decoder's output (RGB).
    flows: float32 [N, H, W, 2], flow from the camera's previous reconstruction, in pixels
      (zeros for a camera's first frame, or after a gap; see ``engine``).
    flow_images: uint8 [N, H, W, 3], the same flow encoded as ``data.flow.encode_flow`` does for
      training, which is what a classifier trained on the prepared dataset expects.
    camera_ids: tuple of N camera ids (a scorer may keep per-camera context).
    """

    reconstructions: np.ndarray
    flows: np.ndarray
    flow_images: np.ndarray
    camera_ids: tuple


class FrameScorer(Protocol):
    """Maps a ``FrameBatch`` to float [N] anomaly confidences in [0, 1]."""

    name: str

    def __call__(self, batch: FrameBatch) -> np.ndarray: ...


def warmup(frame_scorer, frame_shape, buckets):
    """Calls ``frame_scorer.warmup(frame_shape, buckets)`` where the scorer has one (optional)."""
    hook = getattr(frame_scorer, "warmup", None)
    if hook is not None:
        hook(tuple(frame_shape), tuple(buckets))


class MotionEnergyScorer:
    """PLACEHOLDER scorer: ``sigmoid(slope * (mean |flow| - midpoint))``, flow in pixels.

    Numpy, not jitted: one mean over [N, H, W, 2] is cheaper than a device round trip.
    """

    name = "motion_energy_placeholder"

    def __init__(self, *, midpoint=1.0, slope=4.0):
        if not (math.isfinite(midpoint) and math.isfinite(slope)):
            raise ValueError(f"midpoint and slope must be finite, got {midpoint}, {slope}")
        self.midpoint = float(midpoint)
        self.slope = float(slope)

    def __call__(self, batch):
        flows = np.asarray(batch.flows, np.float32)
        energy = np.sqrt(np.sum(np.square(flows), axis=-1)).mean(axis=(1, 2))
        return 1.0 / (1.0 + np.exp(-self.slope * (energy - self.midpoint)))


_SCORERS = {
    "motion_energy": lambda cfg: MotionEnergyScorer(midpoint=cfg.midpoint, slope=cfg.slope),
}


def register_scorer(name, factory):
    """Makes ``config.scorer.name = name`` build ``factory(config.scorer)``."""
    _SCORERS[name] = factory


def make_scorer(scorer_config):
    """The scorer named by ``scorer_config.name``."""
    if scorer_config.name not in _SCORERS:
        raise ValueError(f"unknown scorer {scorer_config.name!r}; registered: {sorted(_SCORERS)}")
    return _SCORERS[scorer_config.name](scorer_config)


def check_confidences(confidences, n):
    """float64 [n] confidences, or ValueError naming what the scorer got wrong."""
    confidences = np.asarray(confidences, np.float64)
    if confidences.shape != (n,):
        raise ValueError(f"scorer returned shape {confidences.shape}, expected ({n},)")
    if (
        not np.all(np.isfinite(confidences))
        or confidences.min(initial=0) < 0
        or confidences.max(initial=0) > 1
    ):
        raise ValueError(f"scorer returned values outside [0, 1]: {confidences.tolist()}")
    return confidences
