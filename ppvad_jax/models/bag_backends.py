"""The bag-of-objects backends by name, for the trainer and the server alike.

``classic``: OpenCV's shipped detectors (``classic_detector``), no weights.
``yolo``: a converted YOLOv4 (``darknet.bag_detector``) in ``model_dir``.
Both have ``classes`` and ``bag(frames) -> [N, len(classes)]``. Imports are
lazy: the classic backend never loads the darknet code and vice versa.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the imports below stay lazy at run time
    from ppvad_jax.models.classic_detector import ClassicDetector
    from ppvad_jax.models.darknet.bag_detector import YoloBagDetector


def make(
    backend: str, *, model_dir: str | os.PathLike | None = None, conf_threshold: float = 0.25
) -> ClassicDetector | YoloBagDetector:
    if backend == "classic":
        from ppvad_jax.models import classic_detector

        return classic_detector.ClassicDetector()
    if backend == "yolo":
        from ppvad_jax.models.darknet import bag_detector

        return bag_detector.YoloBagDetector(model_dir, conf_threshold=conf_threshold)
    raise ValueError(f"detector.backend must be 'classic' or 'yolo', got {backend!r}")
