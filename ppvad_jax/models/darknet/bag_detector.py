"""A converted YOLOv4 as the classifier's bag-of-objects backend (the paper's, section 3.4.1).

Same interface as ``models.classic_detector.ClassicDetector``: ``classes`` and
``bag(frames) -> [N, 80]`` counts, so the classifier's input builder takes
either. Frames are stretched to the cfg's input size (as darknet and OpenCV's
``blobFromImage`` do) and run in jitted batches of ``batch_size``.
"""

from __future__ import annotations

import os
import pathlib

import cv2
import jax
import numpy as np
import numpy.typing as npt

from ppvad_jax.models.darknet import convert, detect


def missing_weights_message(model_dir: str | os.PathLike) -> str:
    return (
        f"no converted YOLOv4 at {model_dir}. Get AlexeyAB darknet's COCO weights, yolov4.weights "
        "(https://github.com/AlexeyAB/darknet/releases, 'yolov4.weights', 245 MB) and its yolov4.cfg, "
        f"then run: python -m launch.convert_weights --from=darknet --cfg=yolov4.cfg "
        f"--weights=yolov4.weights --output={model_dir} . Without weights, use the classic OpenCV "
        "detector: --config.detector.backend=classic"
    )


class YoloBagDetector:
    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        batch_size: int = 8,
    ) -> None:
        if not (pathlib.Path(model_dir) / "spec.json").is_file():
            raise FileNotFoundError(missing_weights_message(model_dir))
        self.model, self.variables, self.spec = convert.load_converted(model_dir)
        self.classes = tuple(self.spec["class_names"])
        self.size = (self.spec["input_width"], self.spec["input_height"])
        self.batch_size = batch_size
        self._bag = jax.jit(
            lambda v, x: (
                detect.detect(
                    self.model, v, x, conf_threshold=conf_threshold, iou_threshold=iou_threshold
                ).bag
            )
        )

    def bag(self, frames: npt.ArrayLike) -> np.ndarray:
        """Per-class counts [N, num_classes] float32 for RGB uint8 frames [N, H, W, 3]."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 RGB frames [N, H, W, 3], got {frames.dtype} {frames.shape}")
        out = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            x = np.stack([cv2.resize(f, self.size, interpolation=cv2.INTER_LINEAR) for f in chunk])
            x = np.pad(x, ((0, self.batch_size - len(chunk)),) + ((0, 0),) * 3).astype(np.float32) / 255.0
            out.append(np.asarray(self._bag(self.variables, x), np.float32)[: len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)
