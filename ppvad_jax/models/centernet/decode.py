"""CenterNet's outputs into detections (Zhou et al., "Objects as Points", 2019), under jit.

The network gives, at stride 4 of its input, a class heatmap ``[B, H/4, W/4, C]`` (sigmoid
scores: "an object of class c is centred in this cell") and, per cell, four distances in input
pixels from the cell's point (x * stride, y * stride) to the box's left, top, right and bottom
edges (this model's ``wh`` head: ``x0 = x * stride - d0``, ``y1 = y * stride + d3``; no offset
head). Decoding:
1. peaks: a cell's score survives when it is the maximum of its 3x3 neighbourhood in its class
   (the paper's replacement for NMS);
2. the ``max_peaks`` best (cell, class) peaks over all classes, with their boxes;
3. per-class greedy NMS (``darknet.nms``, as for YOLO's bag): neighbouring cells of one large
   object are separate 3x3 maxima (measured on ``astronaut()``: three person peaks at 0.61,
   0.26 and 0.16 on nearly the same box), so peaks alone would count one person three times.
The model's own graph does steps 1-2 in ``tower_0/detections`` (rows x0, y0, x1, y1, score,
class), which ``tests/test_centernet.py`` compares with ``peak_detections``; the JS library
around it then runs a class-agnostic NMS, here per class so that a person does not suppress
the bag it carries.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ppvad_jax.models.darknet import nms

STRIDE = 4


class Peaks(NamedTuple):
    boxes: jax.Array  # [B, K, 4] x0, y0, x1, y1 in input pixels
    scores: jax.Array  # [B, K] heatmap value at the peak, best first
    classes: jax.Array  # [B, K] int32


def heatmap_peaks(heatmap: jax.Array, *, window: int = 3) -> jax.Array:
    """The heatmap with every score that is not its window's maximum (per class) set to 0."""
    pooled = jax.lax.reduce_window(
        heatmap, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, 1, 1, 1), "SAME"
    )
    return jnp.where(heatmap == pooled, heatmap, 0.0)


def peak_detections(
    heatmap: jax.Array, distances: jax.Array, *, max_peaks: int = 100, stride: int = STRIDE
) -> Peaks:
    """The ``max_peaks`` best peaks of a batch (steps 1-2 of the module docstring).

    Args:
      heatmap: [B, h, w, C] class scores in [0, 1].
      distances: [B, h, w, 4] left, top, right, bottom distances in input pixels.
      max_peaks: static; the model's graph keeps 100.
      stride: input pixels per heatmap cell.
    """
    batch, _, width, classes = heatmap.shape
    flat = heatmap_peaks(heatmap).reshape(batch, -1)
    scores, index = jax.lax.top_k(flat, max_peaks)
    cell, cls = index // classes, index % classes
    x = (cell % width).astype(heatmap.dtype) * stride
    y = (cell // width).astype(heatmap.dtype) * stride
    d = jnp.take_along_axis(distances.reshape(batch, -1, 4), cell[..., None], axis=1)
    boxes = jnp.stack([x - d[..., 0], y - d[..., 1], x + d[..., 2], y + d[..., 3]], axis=-1)
    return Peaks(boxes, scores, cls.astype(jnp.int32))


def detections(
    peaks: Peaks,
    *,
    num_classes: int,
    score_threshold: float | jax.Array,
    iou_threshold: float | jax.Array,
    max_detections: int = 100,
) -> nms.Detections:
    """Per-class NMS of the peaks (step 3); boxes stay in input pixels."""
    # Each peak has one class: its score row is one-hot, so darknet's (box, class) NMS applies.
    scores = jax.nn.one_hot(peaks.classes, num_classes, dtype=peaks.scores.dtype) * peaks.scores[..., None]
    return nms.batched_nms(
        peaks.boxes,
        scores,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_candidates=peaks.scores.shape[-1],
        max_detections=max_detections,
    )
