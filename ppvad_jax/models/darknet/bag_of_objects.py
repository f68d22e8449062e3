"""The bag of objects (paper, section 3.4.1): per-class counts of the objects detected in a frame.

The classifier reads, next to the two ResNet-50 streams, a vector of the detector's 80 COCO
class counts for the current reconstructed frame. A count is the number of detections
of that class kept by NMS whose score (objectness * class probability) is above
``score_threshold``, so it counts objects, not overlapping boxes of one object.
A frame with more than ``max_detections`` kept detections (the NMS output size) has its
counts cut there; ``nms.Detections.num_candidates`` tells when that can have happened.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppvad_jax.models.darknet import nms


def bag_of_objects(
    detections: nms.Detections, *, num_classes: int, score_threshold: float | jax.Array
) -> jax.Array:
    """Per-class counts [..., num_classes] int32 of valid detections scoring above the threshold."""
    counted = detections.valid & (detections.scores > score_threshold)
    one_hot = jax.nn.one_hot(detections.classes, num_classes, dtype=jnp.int32)  # class -1: all zeros
    return jnp.sum(one_hot * counted[..., None].astype(jnp.int32), axis=-2)
