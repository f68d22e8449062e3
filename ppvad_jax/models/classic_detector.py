"""A weight-free "bag of objects" from OpenCV's shipped detectors (no downloads).

The paper's bag of objects counts YOLOv4 COCO detections per class (section
3.4.2). YOLOv4's weights cannot be fetched here, so the embedded default uses
the detectors that ship inside opencv-python-headless 4.x (5.x dropped them):

| class        | detector                                                   |
|--------------|------------------------------------------------------------|
| person       | HOG + linear SVM people detector (Dalal-Triggs, 64x128 window) |
| face         | Haar cascade ``haarcascade_frontalface_default.xml``        |
| upper_body   | Haar cascade ``haarcascade_upperbody.xml``                  |
| full_body    | Haar cascade ``haarcascade_fullbody.xml``                   |

They run on the host CPU (OpenCV, not JAX), one frame at a time, so the bag is
computed once per sampled frame when features are extracted, not inside a
jitted step. Cost per 240x320 frame on the 2-core CPU (BUILD_NOTES.md): 0.22 s
for all four at ``upscale=1`` (HOG 0.02, face 0.06, upper body 0.10, full
body 0.04), 0.88 s at ``upscale=2``, which finds people smaller than the
64x128 HOG window and the cascades' minimum sizes. The face cascade is also
the "faces still detectable" check of the privacy evaluation.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
import numpy.typing as npt

CLASSES = ("person", "face", "upper_body", "full_body")
_CASCADES = {
    "face": "haarcascade_frontalface_default.xml",
    "upper_body": "haarcascade_upperbody.xml",
    "full_body": "haarcascade_fullbody.xml",
}


@dataclasses.dataclass(frozen=True)
class Detection:
    box: tuple  # (x0, y0, x1, y1) in the input frame's pixels
    label: str
    score: float  # HOG: SVM margin; cascades: number of merged neighbour detections


@dataclasses.dataclass(frozen=True)
class ClassicDetectorConfig:
    upscale: float = 1.0
    hog_threshold: float = 0.5  # SVM margin a person box needs to count
    hog_win_stride: int = 8
    cascade_scale_factor: float = 1.1
    cascade_min_neighbors: int = 4  # also the score a cascade box needs to count
    nms_iou: float = 0.4  # HOG boxes overlapping more than this merge (highest margin kept)


class ClassicDetector:
    """``detect(frame)`` boxes and ``bag(frames)`` per-class counts, from OpenCV's detectors."""

    classes = CLASSES

    def __init__(self, config: ClassicDetectorConfig = ClassicDetectorConfig()) -> None:
        self.config = config
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._cascades = {}
        for label, name in _CASCADES.items():
            path = os.path.join(cv2.data.haarcascades, name)
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise FileNotFoundError(
                    f"OpenCV Haar cascade {path} is missing or unreadable; the classic detector needs "
                    "opencv-python-headless 4.x (5.x no longer ships cascades)"
                )
            self._cascades[label] = cascade

    def detect(self, frame: npt.ArrayLike) -> list[Detection]:
        """Detections in one RGB frame [H, W, 3] (uint8, or float in [0, 1])."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"expected one RGB frame [H, W, 3], got shape {frame.shape}")
        if frame.dtype != np.uint8:
            if not np.all(np.isfinite(frame)):
                raise ValueError("frame has NaN or infinite pixels")
            if frame.min() < 0 or frame.max() > 1:
                raise ValueError(
                    f"float frames must be in [0, 1], got [{frame.min():g}, {frame.max():g}] (uint8 is 0-255)"
                )
            frame = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
        cfg = self.config
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if cfg.upscale != 1:
            grey = cv2.resize(grey, None, fx=cfg.upscale, fy=cfg.upscale, interpolation=cv2.INTER_LINEAR)
        found = []
        if grey.shape[0] >= 128 and grey.shape[1] >= 64:
            rects, weights = self._hog.detectMultiScale(grey, winStride=(cfg.hog_win_stride,) * 2)
            boxes = [(r, float(w)) for r, w in zip(rects, np.ravel(weights), strict=True)]
            boxes = [(r, w) for r, w in boxes if w >= cfg.hog_threshold]
            found += [("person", r, w) for r, w in _nms(boxes, cfg.nms_iou)]
        for label, cascade in self._cascades.items():
            rects, neighbours = cascade.detectMultiScale2(
                grey, scaleFactor=cfg.cascade_scale_factor, minNeighbors=cfg.cascade_min_neighbors
            )
            found += [(label, r, float(n)) for r, n in zip(rects, np.ravel(neighbours), strict=True)]
        s = cfg.upscale
        return [
            Detection((float(x / s), float(y / s), float((x + w) / s), float((y + h) / s)), label, score)
            for label, (x, y, w, h), score in found
        ]

    def bag(self, frames: npt.ArrayLike) -> np.ndarray:
        """Per-class counts [N, len(CLASSES)] float32 for frames [N, H, W, 3]."""
        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise ValueError(f"expected frames [N, H, W, 3], got shape {frames.shape}")
        out = np.zeros((len(frames), len(CLASSES)), np.float32)
        for i, frame in enumerate(frames):
            for det in self.detect(frame):
                out[i, CLASSES.index(det.label)] += 1
        return out


def _iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter)


def _nms(boxes, iou):
    """Greedy NMS on [(rect, score)]: HOG reports one person several times across scales."""
    kept = []
    for rect, score in sorted(boxes, key=lambda b: -b[1]):
        if all(_iou(rect, k) <= iou for k, _ in kept):
            kept.append((rect, score))
    return kept
