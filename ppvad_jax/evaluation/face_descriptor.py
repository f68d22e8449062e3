"""A strong re-identification attacker: dlib's ResNet face descriptor (128-d) with real weights.

Weights: ``face_recognition_models==0.3.0`` carries Davis King's dlib models (CC0 / public
domain); the runtime is the prebuilt ``dlib-bin==20.0.1.post1`` (Boost licence, no compiling).
Alignment uses the **5-point** landmark model; the 68-point one in the same package is not
used, since its training data (iBUG 300-W) forbids commercial use. The package is not imported
(its ``__init__`` needs pkg_resources): its model files are found by location.

Two faces whose descriptors are under 0.6 apart (Euclidean) are the same person by dlib's own
rule (99.38% on LFW in dlib's report). Boxes come from any detector (``models.centerface``);
the 5-point model refines them, so a box from CenterFace and one from dlib's own detector give
nearly the same descriptor (tested).
"""

import importlib.util
import pathlib

import numpy as np

from ppvad_jax.models import centerface

PACKAGE = "face_recognition_models"
INSTALL = "pip install --no-deps face_recognition_models==0.3.0 dlib-bin==20.0.1.post1 (launch/setup_venv.sh)"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON = 0.6  # dlib's documented distance threshold


def models_dir() -> pathlib.Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the dlib face descriptor needs the package {PACKAGE}: {INSTALL}")
    return pathlib.Path(spec.submodule_search_locations[0]) / "models"


def _dlib():
    try:
        import dlib
    except ImportError as e:
        raise ImportError(f"the dlib face descriptor needs dlib: {INSTALL}") from e
    return dlib


class FaceDescriptor:
    """``describe(frame_rgb, boxes) -> [K, 128]`` float64 descriptors, one per box."""

    def __init__(self, model_dir=None, *, jitter=0):
        dlib = _dlib()
        root = pathlib.Path(model_dir) if model_dir else models_dir()
        for name in (SHAPE_MODEL, DESCRIPTOR_MODEL):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name} is missing: {INSTALL}")
        self._rectangle = dlib.rectangle
        self._shapes = dlib.shape_predictor(str(root / SHAPE_MODEL))
        self._net = dlib.face_recognition_model_v1(str(root / DESCRIPTOR_MODEL))
        self.jitter = int(jitter)  # dlib's re-sampling per face: more robust, jitter x slower

    def describe(self, frame, boxes) -> np.ndarray:
        frame = np.ascontiguousarray(centerface.rgb_frame(frame, "the face descriptor"))
        out = np.zeros((len(boxes), 128), np.float64)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
            rect = self._rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
            shape = self._shapes(frame, rect)
            out[i] = np.asarray(self._net.compute_face_descriptor(frame, shape, self.jitter))
        return out


def distances(a, b) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] between two sets of descriptors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
