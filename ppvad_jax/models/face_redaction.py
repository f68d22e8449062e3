"""Identity removal at the camera: faces found by CenterFace are redacted before the encoder runs.

DP-SGD protects the training frames' membership, not who is in the frames a camera sends
(BUILD_NOTES.md, "Strong attackers"): a good reconstruction shows faces. So the camera removes
them itself: ``FaceRedactor`` detects faces (``models.centerface``) on the raw frame, widens each
box by ``margin`` and replaces it (``fill`` with the box's mean colour, ``pixelate`` to 3x3
blocks, or ``blur`` with a Gaussian of sigma a third of the box side) before the frame reaches
the encoder. Nothing of the face is encoded, so nothing of it can be decoded.

The default margin, 0.8 of the face box's side on each side (a box 2.6 times the face: the
head and hair), is measured: against the adaptive dlib attacker of ``evaluation.face_attacks``
through the demo's autoencoder, fill at margin 0.25 leaves re-identification top-1 at 0.22
(chance 0.04), 0.5 at 0.15 and 0.8 at 0.08, since hair and head shape identify people too
(BUILD_NOTES.md, "Frame privacy against strong attackers").

A face the detector misses leaks, so the camera detects more eagerly than the attacker:
threshold 0.3 against the attacker's 0.5, on the frame upscaled ``upscale`` times (faces of a
120x160 frame are 10-40 px). The guarantee is empirical, against the attackers measured in
BUILD_NOTES.md, not a bound like epsilon. Cost: one CenterFace pass per frame (about 40 ms at
240x320 on 2 cores).
"""

import cv2
import numpy as np

from ppvad_jax.models import centerface

METHODS = ("fill", "pixelate", "blur")


def from_spec(spec):
    """``"method[@margin]"`` (e.g. ``"fill@0.8"``) -> a ``FaceRedactor``; ``""`` -> None (off)."""
    if not spec:
        return None
    method, _, margin = str(spec).partition("@")
    try:
        return FaceRedactor(method, **({"margin": float(margin)} if margin else {}))
    except ValueError as e:
        raise ValueError(f"face redaction {spec!r}: {e}") from e


class FaceRedactor:
    """``redact(frame_rgb_uint8) -> (frame, faces_redacted)``; the input is not modified."""

    def __init__(self, method="fill", *, margin=0.8, threshold=0.3, upscale=2.0, detector=None):
        if method not in METHODS:
            raise ValueError(f"face redaction method must be one of {METHODS}, got {method!r}")
        if not (margin >= 0 and upscale >= 1):
            raise ValueError(f"margin must be >= 0 and upscale >= 1, got {margin}, {upscale}")
        self.method, self.margin, self.upscale = method, float(margin), float(upscale)
        self.detector = detector or centerface.CenterFace(threshold=threshold)

    def boxes(self, frame):
        """int [K, 4] x1, y1, x2, y2 to redact, in the frame's pixels, margin included."""
        s = self.upscale
        big = frame if s == 1 else cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        found = self.detector.detect(big).boxes / s
        size = found[:, 2:] - found[:, :2]
        grown = np.concatenate([found[:, :2] - self.margin * size, found[:, 2:] + self.margin * size], axis=1)
        height, width = frame.shape[:2]
        grown = np.clip(np.round(grown), 0, [width, height, width, height]).astype(np.int64)
        return grown[(grown[:, 2] > grown[:, 0]) & (grown[:, 3] > grown[:, 1])]

    def __call__(self, frames):
        """uint8 [N, H, W, 3] -> the frames redacted (a batch: the classifier's inputs)."""
        return np.stack([self.redact(f)[0] for f in frames]) if len(frames) else np.asarray(frames)

    def redact(self, frame):
        frame = centerface.rgb_frame(frame, "face redaction")
        out = frame.copy()
        boxes = self.boxes(frame)
        for x1, y1, x2, y2 in boxes:
            out[y1:y2, x1:x2] = self._replace(out[y1:y2, x1:x2])
        return out, len(boxes)

    def _replace(self, patch):
        if self.method == "fill":
            return patch.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        h, w = patch.shape[:2]
        if self.method == "pixelate":
            small = cv2.resize(patch, (3, 3), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        return cv2.GaussianBlur(patch, (0, 0), max(h, w) / 3)
