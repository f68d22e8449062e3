"""Detection with a darknet model: network, box decoding, per-class NMS and bag of objects.

``detect`` is the batched, jitted path (frames already at the network's input size, float
RGB in [0, 1]); ``detect_image`` wraps it for one uint8 RGB image of any size: it stretches
the image to the input size (as OpenCV's ``blobFromImage`` and darknet's default
``resize_image`` do; no letterbox) and maps boxes back to the image's pixels.

Defaults follow darknet's ``detector test``: score threshold 0.25, NMS IoU threshold 0.45.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models.darknet import bag_of_objects, decode, network, nms


class DetectorOutput(NamedTuple):
    detections: nms.Detections  # boxes xyxy relative to the input ([0, 1] inside the frame)
    bag: jax.Array  # [batch, classes] int32


@functools.partial(jax.jit, static_argnames=("model", "max_candidates", "max_detections", "nms_overlap"))
def detect(
    model: network.Darknet,
    variables: Mapping[str, Any],
    images: jax.Array,
    *,
    conf_threshold: float | jax.Array = 0.25,
    iou_threshold: float | jax.Array = 0.45,
    bag_threshold: float | jax.Array | None = None,
    max_candidates: int = 1024,
    max_detections: int = 100,
    nms_overlap: str = "iou",
) -> DetectorOutput:
    """Detections and bag of objects for a batch of frames.

    Args:
      model, variables: a ``network.Darknet`` and its variables.
      images: [batch, height, width, 3] float RGB in [0, 1] (any size the cfg allows).
      conf_threshold: a (box, class) pair is a detection when objectness * class probability
        is above it; traced, so changing it does not recompile.
      iou_threshold: NMS IoU threshold (traced).
      bag_threshold: score above which a kept detection is counted in the bag; default
        ``conf_threshold``.
      max_candidates, max_detections: NMS sizes (``nms`` module docstring); static.
      nms_overlap: "iou" (OpenCV) or "darknet_diou" (AlexeyAB darknet with
        ``nms_kind=greedynms``); ``nms`` module docstring; static.
    """
    decoded = model.apply(variables, images).decoded
    scores = decoded.objectness[..., None] * decoded.class_probs
    detections = nms.batched_nms(
        decode.cxcywh_to_xyxy(decoded.boxes),
        scores,
        score_threshold=conf_threshold,
        iou_threshold=iou_threshold,
        max_candidates=max_candidates,
        max_detections=max_detections,
        overlap=nms_overlap,
    )
    bag = bag_of_objects.bag_of_objects(
        detections,
        num_classes=scores.shape[-1],
        score_threshold=conf_threshold if bag_threshold is None else bag_threshold,
    )
    return DetectorOutput(detections, bag)


@dataclasses.dataclass(frozen=True)
class Box:
    xyxy: tuple[float, float, float, float]  # original image pixels, clipped to the image
    class_id: int
    class_name: str
    score: float


class ImageDetections(NamedTuple):
    boxes: list[Box]  # best first
    bag: np.ndarray  # [classes] int counts
    num_candidates: int  # (box, class) pairs above the threshold before NMS


def detect_image(
    model: network.Darknet,
    variables: Mapping[str, Any],
    spec: Mapping[str, Any],
    image_uint8_rgb: np.ndarray,
    *,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    nms_overlap: str = "iou",
) -> ImageDetections:
    """Detects objects in one RGB uint8 image [height, width, 3] of any size.

    ``spec`` is the converted model's ``spec.json`` (``convert.load_converted``): it gives the
    network input size and the class names.
    """
    image = np.asarray(image_uint8_rgb)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image [height, width, 3], got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    resized = cv2.resize(image, (spec["input_width"], spec["input_height"]), interpolation=cv2.INTER_LINEAR)
    frames = jnp.asarray(resized[None], jnp.float32) / 255.0
    out = detect(
        model,
        variables,
        frames,
        conf_threshold=conf_threshold,
        iou_threshold=iou_threshold,
        nms_overlap=nms_overlap,
    )
    det = jax.tree.map(lambda x: np.asarray(x[0]), out.detections)
    scale = np.array([width, height, width, height], np.float64)
    boxes = []
    for xyxy, score, class_id in zip(
        det.boxes[det.valid], det.scores[det.valid], det.classes[det.valid], strict=True
    ):
        pixels = np.clip(xyxy.astype(np.float64) * scale, 0.0, scale)
        boxes.append(
            Box(tuple(float(v) for v in pixels), int(class_id), spec["class_names"][class_id], float(score))
        )
    return ImageDetections(boxes, np.asarray(out.bag[0]), int(det.num_candidates))
