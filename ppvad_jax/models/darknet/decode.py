"""YOLO layer activation and box decoding, as darknet's yolo layer and ``get_yolo_box`` do.

Raw yolo output (what darknet's ``forward_yolo_layer`` leaves in the layer's output at
inference), per cell (row, col) and masked anchor a, channels k of ``5 + classes``:
- k = 0, 1: ``sigmoid(t) * scale_x_y - (scale_x_y - 1) / 2``, the box centre's offset in the cell;
- k = 2, 3: ``tw, th`` untouched (log-space size);
- k = 4: ``sigmoid`` objectness; k >= 5: ``sigmoid`` class probabilities.
Darknet stores this NCHW with channel ``a * (5 + classes) + k``; here it is
``[batch, rows, cols, anchors, 5 + classes]``, the same numbers transposed.

Decoded, per box (boxes flattened in (row, col, anchor) order, one yolo layer after another,
the order of OpenCV's Region layer rows):
- centre x = (col + offset_x) / cols, centre y = (row + offset_y) / rows;
- w = exp(tw) * anchor_w / input_width, h = exp(th) * anchor_h / input_height;
all relative to the network input, so the same numbers describe the original image when it
was resized (stretched, not letterboxed) to the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ppvad_jax.models.darknet import cfg


class Decoded(NamedTuple):
    """All boxes of all yolo layers. N = sum over layers of rows * cols * anchors."""

    boxes: jax.Array  # [batch, N, 4] centre x, centre y, width, height; relative to the input
    objectness: jax.Array  # [batch, N]
    class_probs: jax.Array  # [batch, N, classes]


def activate_yolo(x: jax.Array, layer: cfg.Yolo) -> jax.Array:
    """Darknet's yolo layer on an NHWC input: returns [batch, rows, cols, anchors, 5 + classes]."""
    batch, rows, cols, _ = x.shape
    x = x.reshape(batch, rows, cols, len(layer.mask), 5 + layer.classes)
    s = layer.scale_x_y
    xy = jax.nn.sigmoid(x[..., :2]) * s - 0.5 * (s - 1.0)
    return jnp.concatenate([xy, x[..., 2:4], jax.nn.sigmoid(x[..., 4:])], axis=-1)


def decode_layer(raw: jax.Array, layer: cfg.Yolo, *, input_height: int, input_width: int) -> Decoded:
    """Boxes of one yolo layer from its raw output [batch, rows, cols, anchors, 5 + classes]."""
    batch, rows, cols, anchors, _ = raw.shape
    col = jnp.arange(cols, dtype=raw.dtype)[None, None, :, None]
    row = jnp.arange(rows, dtype=raw.dtype)[None, :, None, None]
    anchor_wh = jnp.asarray(layer.anchors, raw.dtype)  # [anchors, 2]
    cx = (col + raw[..., 0]) / cols
    cy = (row + raw[..., 1]) / rows
    w = jnp.exp(raw[..., 2]) * anchor_wh[:, 0] / input_width
    h = jnp.exp(raw[..., 3]) * anchor_wh[:, 1] / input_height
    n = rows * cols * anchors
    return Decoded(
        boxes=jnp.stack([cx, cy, w, h], axis=-1).reshape(batch, n, 4),
        objectness=raw[..., 4].reshape(batch, n),
        class_probs=raw[..., 5:].reshape(batch, n, layer.classes),
    )


def decode(
    raws: Sequence[jax.Array], layers: Sequence[cfg.Yolo], *, input_height: int, input_width: int
) -> Decoded:
    """Concatenates the decoded boxes of every yolo layer, in cfg order."""
    parts = [
        decode_layer(raw, layer, input_height=input_height, input_width=input_width)
        for raw, layer in zip(raws, layers, strict=True)
    ]
    return Decoded(*(jnp.concatenate(field, axis=1) for field in zip(*parts, strict=True)))


def cxcywh_to_xyxy(boxes: jax.Array) -> jax.Array:
    cxcy, wh = boxes[..., :2], boxes[..., 2:]
    return jnp.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=-1)
