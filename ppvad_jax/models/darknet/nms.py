"""Per-class greedy non-maximum suppression under jit, with fixed-size outputs.

Darknet's ``do_nms_sort``: a box may carry several classes (every class whose
``objectness * class_prob`` passes the threshold); for each class separately, candidates are
visited by decreasing score and a candidate is dropped when its IoU with a kept one of the
same class is above ``iou_threshold`` (strictly). Here the (box, class) pairs are the
candidates, so one pass over them handles all classes at once.

``overlap``: "iou" (OpenCV, pjreddie's darknet, and AlexeyAB's ``do_nms_sort`` for cfgs
without ``nms_kind``) or "darknet_diou": AlexeyAB's darknet, for cfgs with
``nms_kind=greedynms`` such as yolov4.cfg and yolov4-tiny.cfg, compares
``box_diou = IoU - (d^2 / c^2) ** 0.6`` (d: distance between centres, c: diagonal of the
enclosing box) with the threshold instead (older AlexeyAB versions used IoU there too).
DIoU <= IoU, so it keeps more boxes whose centres are apart.

Fixed sizes, for jit:
- ``max_candidates``: the top-scoring pairs that enter NMS. Pairs beyond it are dropped
  before NMS (darknet keeps all); ``num_candidates`` reports how many passed the score
  threshold, so a caller can see when the cap bit. Cost: an IoU matrix of
  ``max_candidates^2`` floats (1024: 4 MB per image) and a sequential loop of one
  O(max_candidates) step per candidate (YOLOv4-tiny at 416x416 with every one of the 1024
  candidates used: 16 ms per image on 2 CPU cores).
- ``max_detections``: the kept pairs returned, best first, with a ``valid`` mask.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Detections(NamedTuple):
    """Kept detections, best first; rows where ``valid`` is False are padding."""

    boxes: jax.Array  # [..., max_detections, 4] x0, y0, x1, y1 (units of the input boxes)
    scores: jax.Array  # [..., max_detections]
    classes: jax.Array  # [..., max_detections] int32
    valid: jax.Array  # [..., max_detections] bool
    num_candidates: jax.Array  # [...] int32: (box, class) pairs above the score threshold


def iou_matrix(a: jax.Array, b: jax.Array) -> jax.Array:
    """IoU of xyxy boxes [n, 4] x [m, 4] -> [n, m]; 0 where the union is empty."""
    top_left = jnp.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = jnp.prod(jnp.clip(bottom_right - top_left, 0.0), axis=-1)
    area_a = jnp.prod(jnp.clip(a[:, 2:] - a[:, :2], 0.0), axis=-1)
    area_b = jnp.prod(jnp.clip(b[:, 2:] - b[:, :2], 0.0), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def overlap_matrix(a: jax.Array, b: jax.Array, overlap: str) -> jax.Array:
    """``iou_matrix``, or darknet's ``box_diou`` (module docstring) for overlap="darknet_diou"."""
    iou = iou_matrix(a, b)
    if overlap == "iou":
        return iou
    if overlap != "darknet_diou":
        raise ValueError(f"overlap must be 'iou' or 'darknet_diou', got {overlap!r}")
    enclosing = jnp.maximum(a[:, None, 2:], b[None, :, 2:]) - jnp.minimum(a[:, None, :2], b[None, :, :2])
    c = jnp.sum(enclosing**2, axis=-1)
    d = jnp.sum(((a[:, None, :2] + a[:, None, 2:]) / 2 - (b[None, :, :2] + b[None, :, 2:]) / 2) ** 2, axis=-1)
    return jnp.where(c > 0, iou - (d / jnp.where(c > 0, c, 1.0)) ** 0.6, iou)


def nms_single(
    boxes: jax.Array,
    scores: jax.Array,
    *,
    score_threshold: float | jax.Array,
    iou_threshold: float | jax.Array,
    max_candidates: int,
    max_detections: int,
    overlap: str = "iou",
) -> Detections:
    """NMS for one image.

    Args:
      boxes: [N, 4] xyxy.
      scores: [N, C] per-class scores (darknet: objectness * class probability).
      score_threshold: a pair is a candidate when its score is above this (strictly).
      iou_threshold: suppress when IoU with a kept same-class pair is above this (strictly).
      max_candidates, max_detections: static sizes (module docstring).
      overlap: "iou" or "darknet_diou" (module docstring).
    """
    num_boxes, num_classes = scores.shape
    flat = scores.reshape(-1)
    k = min(max_candidates, flat.shape[0])
    top_scores, top_index = jax.lax.top_k(flat, k)  # sorted, best first
    box_index, class_index = top_index // num_classes, top_index % num_classes
    candidate = top_scores > score_threshold
    cand_boxes = boxes[box_index]
    overlaps = (overlap_matrix(cand_boxes, cand_boxes, overlap) > iou_threshold) & (
        class_index[:, None] == class_index[None, :]
    )

    def visit(state):
        # keep[i] is final once every earlier candidate has been visited; it suppresses later ones.
        i, keep = state
        return i + 1, keep & ~(keep[i] & overlaps[i] & (jnp.arange(k) > i))

    # Candidates are a prefix (sorted by score): stop after the last one rather than at k.
    _, keep = jax.lax.while_loop(lambda state: state[0] < jnp.sum(candidate), visit, (0, candidate))
    slot = jnp.where(keep, jnp.cumsum(keep) - 1, max_detections)  # kept pairs fill slots in score order
    slot = jnp.where(slot < max_detections, slot, max_detections)

    def scatter(values, fill):
        out = jnp.full((max_detections + 1, *values.shape[1:]), fill, values.dtype)
        return out.at[slot].set(values, mode="drop")[:max_detections]

    return Detections(
        boxes=scatter(cand_boxes, 0.0),
        scores=scatter(top_scores, 0.0),
        classes=scatter(class_index.astype(jnp.int32), -1),
        valid=scatter(keep, False),
        num_candidates=jnp.sum(flat > score_threshold).astype(jnp.int32),
    )


def batched_nms(
    boxes: jax.Array,
    scores: jax.Array,
    *,
    score_threshold: float | jax.Array,
    iou_threshold: float | jax.Array,
    max_candidates: int = 1024,
    max_detections: int = 100,
    overlap: str = "iou",
) -> Detections:
    """``nms_single`` over a leading batch axis: boxes [B, N, 4], scores [B, N, C]."""
    return jax.vmap(
        lambda b, s: nms_single(
            b,
            s,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
            max_candidates=max_candidates,
            max_detections=max_detections,
            overlap=overlap,
        )
    )(boxes, scores)
