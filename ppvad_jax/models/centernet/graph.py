"""A jit-able JAX interpreter of a TF.js graph model: the nodes an output needs, in topological order.

``GraphFunction(model, outputs)`` keeps the nodes that ``outputs`` depend on, orders them, and
gives ``apply(params, *inputs) -> tuple of outputs``, a pure function of the float weights
(``params``, traced, so jit does not fold 2M constants into the program) and the inputs
(the graph's ``Placeholder``s, in file order). Integer and bool weights are kept as numpy:
they are shapes, axes and sizes, which XLA needs static.

Ops (TF semantics, NHWC only; what TF.js's CPU backend computes, checked by
``tests/test_centernet.py`` on a small graph that uses every one of them and on the CenterNet):
- ``Conv2D``, ``DepthwiseConv2dNative``: SAME (TF's: the extra row/column of padding goes
  after), VALID or EXPLICIT padding, strides, dilations;
- ``_FusedConv2D``, ``FusedDepthwiseConv2dNative``: the convolution, then ``BiasAdd`` and
  optionally one of ``Relu``, ``Relu6``, ``Prelu`` (its alpha is the fourth input);
- elementwise with broadcasting: ``Add``, ``AddV2``, ``BiasAdd``, ``Sub``, ``Mul``, ``RealDiv``,
  ``Maximum``, ``Minimum``; ``Relu``, ``Relu6``, ``Sigmoid``, ``Tanh``;
- ``Mean`` (``keep_dims``), ``ConcatV2``, ``Pad``, ``Reshape``, ``Identity``;
- ``MaxPool``, ``AvgPool`` (SAME averages over the window's cells inside the input, as TF);
- ``ResizeBilinear``, ``ResizeNearestNeighbor`` with ``align_corners`` / ``half_pixel_centers``.
Any other op is refused when the function is built, naming the op and the node.
Convolutions run at JAX's default precision (full float32 on CPU; TF32 on recent GPUs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models.centernet import tfjs_model
from ppvad_jax.models.centernet.tfjs_model import attribute

_DIMS = ("NHWC", "HWIO", "NHWC")


class UnsupportedGraphError(NotImplementedError):
    """The graph uses an op, attribute value or layout that this interpreter does not implement."""


def _static(value, node, what):
    """An operand that must be known when tracing (a shape, an axis, a size): a numpy array."""
    if isinstance(value, jax.core.Tracer):
        raise UnsupportedGraphError(f"node {node.name} ({node.op}): its {what} is computed, not a constant")
    return np.asarray(value)


def _check_nhwc(node):
    layout = attribute(node, "data_format", "NHWC")
    if layout != "NHWC":
        raise UnsupportedGraphError(f"node {node.name} ({node.op}): data_format {layout}, only NHWC")


def _padding(node):
    padding = attribute(node, "padding")
    if padding in ("SAME", "VALID"):
        return padding
    if padding == "EXPLICIT":
        pads = attribute(node, "explicit_paddings")
        return [(pads[2], pads[3]), (pads[4], pads[5])]
    raise UnsupportedGraphError(f"node {node.name} ({node.op}): padding {padding!r}")


def _conv(node, x, w, *, depthwise):
    _check_nhwc(node)
    strides = attribute(node, "strides", [1, 1, 1, 1])
    dilations = attribute(node, "dilations", [1, 1, 1, 1])
    groups = 1
    if depthwise:  # [kh, kw, c, m] -> [kh, kw, 1, c * m]: output channel c * m + j, as TF orders them
        kh, kw, channels, multiplier = w.shape
        w = jnp.reshape(w, (kh, kw, 1, channels * multiplier))
        groups = channels
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(strides[1:3]),
        padding=_padding(node),
        rhs_dilation=tuple(dilations[1:3]),
        dimension_numbers=_DIMS,
        feature_group_count=groups,
    )


def _relu6(x):
    return jnp.clip(x, 0.0, 6.0)


def _prelu(x, alpha):
    return jnp.where(x >= 0, x, alpha * x)


def _fused_conv(node, args, *, depthwise):
    y = _conv(node, args[0], args[1], depthwise=depthwise)
    fused = attribute(node, "fused_ops", [])
    extra = args[2:]
    if not fused or fused[0] != "BiasAdd" or len(fused) > 2:
        raise UnsupportedGraphError(
            f"node {node.name} ({node.op}): fused_ops {fused}, expected BiasAdd[, act]"
        )
    y = y + extra[0]
    activation = fused[1] if len(fused) == 2 else None
    if activation is None:
        return y
    if activation == "Relu":
        return jax.nn.relu(y)
    if activation == "Relu6":
        return _relu6(y)
    if activation == "Prelu":
        return _prelu(y, extra[1])
    raise UnsupportedGraphError(f"node {node.name} ({node.op}): fused activation {activation}")


def _pool(node, x, *, average):
    _check_nhwc(node)
    window = tuple(attribute(node, "ksize"))
    strides = tuple(attribute(node, "strides"))
    padding = _padding(node)
    if not average:
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, padding)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, padding)
    cells = jax.lax.reduce_window(jnp.ones_like(x), 0.0, jax.lax.add, window, strides, padding)
    return total / cells


def _source_coordinates(out_size, in_size, *, align_corners, half_pixel):
    """Where each output row (or column) samples the input, in input coordinates (TF's scalers)."""
    if align_corners and out_size > 1:
        scale = (in_size - 1) / (out_size - 1)
    else:
        scale = in_size / out_size
    dst = np.arange(out_size, dtype=np.float64)
    return scale * (dst + 0.5) - 0.5 if half_pixel else scale * dst, scale


def _resize(node, x, size, *, bilinear):
    out_h, out_w = (int(s) for s in _static(size, node, "size"))
    align_corners = attribute(node, "align_corners", False)
    half_pixel = attribute(node, "half_pixel_centers", False)
    for axis, out_size in ((1, out_h), (2, out_w)):
        in_size = x.shape[axis]
        src, scale = _source_coordinates(
            out_size, in_size, align_corners=align_corners, half_pixel=half_pixel
        )
        if bilinear:
            floor = np.floor(src)
            lower = np.maximum(floor, 0).astype(np.int32)
            upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int32)
            frac = (src - floor).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
            lo, hi = jnp.take(x, lower, axis=axis), jnp.take(x, upper, axis=axis)
            x = lo + (hi - lo) * frac
        else:
            # TF's nearest neighbour: half-pixel centres sample at (dst + 0.5) * scale, no -0.5;
            # align_corners rounds halves up (roundf / Math.round), not to even as np.round does.
            where = scale * (np.arange(out_size) + 0.5) if half_pixel else src
            index = np.floor(where + 0.5) if align_corners else np.floor(where)
            x = jnp.take(x, np.clip(index, 0, in_size - 1).astype(np.int32), axis=axis)
    return x


def _binary(fn):
    return lambda node, args: fn(args[0], args[1])


def _unary(fn):
    return lambda node, args: fn(args[0])


def _mean(node, args):
    axes = tuple(int(a) for a in np.atleast_1d(_static(args[1], node, "axes")))
    return jnp.mean(args[0], axis=axes, keepdims=attribute(node, "keep_dims", False))


def _concat(node, args):
    return jnp.concatenate(args[:-1], axis=int(_static(args[-1], node, "axis")))


def _pad(node, args):
    pads = _static(args[1], node, "paddings")
    return jnp.pad(args[0], [(int(a), int(b)) for a, b in pads])


def _reshape(node, args):
    return jnp.reshape(args[0], tuple(int(s) for s in _static(args[1], node, "shape")))


OPS = {
    "Identity": _unary(lambda x: x),
    "Conv2D": lambda node, args: _conv(node, args[0], args[1], depthwise=False),
    "DepthwiseConv2dNative": lambda node, args: _conv(node, args[0], args[1], depthwise=True),
    "_FusedConv2D": lambda node, args: _fused_conv(node, args, depthwise=False),
    "FusedDepthwiseConv2dNative": lambda node, args: _fused_conv(node, args, depthwise=True),
    "Add": _binary(jnp.add),
    "AddV2": _binary(jnp.add),
    "BiasAdd": _binary(jnp.add),
    "Sub": _binary(jnp.subtract),
    "Mul": _binary(jnp.multiply),
    "RealDiv": _binary(jnp.divide),
    "Maximum": _binary(jnp.maximum),
    "Minimum": _binary(jnp.minimum),
    "Relu": _unary(jax.nn.relu),
    "Relu6": _unary(_relu6),
    "Sigmoid": _unary(jax.nn.sigmoid),
    "Tanh": _unary(jnp.tanh),
    "Mean": _mean,
    "ConcatV2": _concat,
    "Pad": _pad,
    "Reshape": _reshape,
    "MaxPool": lambda node, args: _pool(node, args[0], average=False),
    "AvgPool": lambda node, args: _pool(node, args[0], average=True),
    "ResizeBilinear": lambda node, args: _resize(node, args[0], args[1], bilinear=True),
    "ResizeNearestNeighbor": lambda node, args: _resize(node, args[0], args[1], bilinear=False),
}


def _source(name):
    """(node name, output index) of an input reference ``"node"`` or ``"node:k"``."""
    node, _, index = name.partition(":")
    return node, int(index or 0)


def _topological_order(nodes, outputs):
    """The names of the nodes ``outputs`` need, each after its inputs (iterative depth-first)."""
    order, state, stack = [], {}, [(_source(o)[0], False) for o in reversed(outputs)]
    while stack:
        name, expanded = stack.pop()
        if name not in nodes:
            raise tfjs_model.TfjsModelError(f"the graph has no node {name!r}")
        if expanded:
            state[name] = "done"
            order.append(name)
            continue
        if state.get(name) == "done":
            continue
        if state.get(name) == "open":
            raise tfjs_model.TfjsModelError(f"the graph has a cycle through {name!r}")
        state[name] = "open"
        stack.append((name, True))
        stack.extend(
            (_source(i)[0], False) for i in reversed(nodes[name].inputs) if state.get(_source(i)[0]) != "done"
        )
    return order


class GraphFunction:
    """``apply(params, *inputs)``: the graph's ``outputs`` (module docstring)."""

    def __init__(self, model: tfjs_model.TfjsModel, outputs):
        self.outputs = tuple(outputs)
        self._nodes = [model.nodes[n] for n in _topological_order(model.nodes, self.outputs)]
        unsupported = sorted(
            {(n.op, n.name) for n in self._nodes if n.op not in OPS and n.op not in ("Const", "Placeholder")}
        )
        if unsupported:
            listing = ", ".join(f"{op} (node {name})" for op, name in unsupported[:8])
            raise UnsupportedGraphError(f"{model.path}: ops not implemented by {__name__}: {listing}")
        self.input_names = tuple(n.name for n in self._nodes if n.op == "Placeholder")
        consts = [n.name for n in self._nodes if n.op == "Const"]
        self.params = {k: model.weights[k] for k in consts if model.weights[k].dtype == np.float32}
        self._static = {k: model.weights[k] for k in consts if model.weights[k].dtype != np.float32}

    def apply(self, params, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        values = {**self._static, **params, **dict(zip(self.input_names, inputs, strict=True))}
        for node in self._nodes:
            if node.op in ("Const", "Placeholder"):
                continue
            args = []
            for name in node.inputs:
                source, index = _source(name)
                if index != 0:
                    raise UnsupportedGraphError(f"node {node.name} reads output {index} of {source}")
                args.append(values[source])
            values[node.name] = OPS[node.op](node, args)
        return tuple(values[_source(o)[0]] for o in self.outputs)
