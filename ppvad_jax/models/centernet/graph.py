"""A jit-able JAX interpreter of a TF.js graph model: the nodes an output needs, in topological order.

``GraphFunction(model, outputs)`` keeps the nodes that ``outputs`` depend on, orders them, and
gives ``apply(params, *inputs) -> tuple of outputs``, a pure function of the float weights
(``params``, traced, so jit does not fold 2M constants into the program) and the inputs
(the graph's ``Placeholder``s, in file order). Integer and bool weights are kept as numpy:
they are shapes, axes and sizes, which XLA needs static.

Ops (TF semantics, NHWC only; what TF.js's CPU backend computes, checked by
``tests/test_centernet.py`` on a small graph that uses every one of them and on the CenterNet):
- ``Conv2D``, ``DepthwiseConv2dNative``: SAME (TF's: the extra row/column of padding goes
  after), VALID or EXPLICIT padding, strides, dilations; depthwise ones as shifted products
  (``_depthwise_taps``: XLA-CPU's grouped convolution is slow);
- ``_FusedConv2D``, ``FusedDepthwiseConv2dNative``: the convolution, then ``BiasAdd`` and
  optionally one of ``Relu``, ``Relu6``, ``Prelu`` (its alpha is the fourth input);
- elementwise with broadcasting: ``Add``, ``AddV2``, ``BiasAdd``, ``Sub``, ``Mul``, ``RealDiv``,
  ``Maximum``, ``Minimum``; ``Relu``, ``Relu6``, ``Sigmoid``, ``Tanh``;
- ``Mean`` (``keep_dims``), ``ConcatV2``, ``Pad``, ``Reshape``, ``Identity``;
- ``MaxPool``, ``AvgPool`` (SAME averages over the window's cells inside the input, as TF);
- ``ResizeBilinear``, ``ResizeNearestNeighbor`` with ``align_corners`` / ``half_pixel_centers``.
Any other op is refused when the function is built, naming the op and the node.
Convolutions run at JAX's default precision (full float32 on CPU; TF32 on recent GPUs).

Other input sizes (``scaled_resizes``): a converted Keras graph stores each upsampling's output
size as a constant folded for the exported input (CenterNet: 512x512), so the same graph fed a
256x320 image would resize to the wrong size. ``apply(..., resize_scales=...)`` replaces each
resize's constant by its input's size times the integer factor that the node has at the graph's
own input shape (found by ``scaled_resizes``, a shape-only trace): what Keras's ``UpSampling2D``
means. The factors must be integers and the new input divisible by the network's total stride;
the test checks it against TF.js running a copy of the graph whose constants were rewritten.
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
    strides = tuple(attribute(node, "strides", [1, 1, 1, 1])[1:3])
    dilations = tuple(attribute(node, "dilations", [1, 1, 1, 1])[1:3])
    if depthwise:
        return _depthwise_taps(x, w, strides, _padding(node), dilations)
    return jax.lax.conv_general_dilated(
        x, w, window_strides=strides, padding=_padding(node), rhs_dilation=dilations, dimension_numbers=_DIMS
    )


def _same_pads(size, kernel, stride, dilation):
    """TF's SAME: the output is ceil(size / stride); the odd row or column of padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _depthwise_taps(x, w, strides, padding, dilations):
    """A depthwise convolution as a sum of kh * kw shifted products, which XLA fuses into one loop.

    XLA's CPU backend runs a grouped convolution (``feature_group_count`` = channels) far below
    the memory bandwidth: on CenterNet at 256x320 the taps made the whole network 6.6x faster
    (BUILD_NOTES.md), to the same values within float32 rounding. Output channel c * m + j is
    input channel c times ``w[..., c, j]``, as TF orders it.
    """
    kh, kw, channels, multiplier = w.shape
    if multiplier > 1:
        x = jnp.repeat(x, multiplier, axis=-1)
    w = jnp.reshape(w, (kh, kw, channels * multiplier))
    if padding == "VALID":
        padding = [(0, 0), (0, 0)]
    elif padding == "SAME":
        padding = [_same_pads(x.shape[1 + a], (kh, kw)[a], strides[a], dilations[a]) for a in (0, 1)]
    x = jnp.pad(x, [(0, 0), *padding, (0, 0)])
    out_h = (x.shape[1] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    out_w = (x.shape[2] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    out = None
    for i in range(kh):
        for j in range(kw):
            top, left = i * dilations[0], j * dilations[1]
            window = x[
                :,
                top : top + (out_h - 1) * strides[0] + 1 : strides[0],
                left : left + (out_w - 1) * strides[1] + 1 : strides[1],
                :,
            ]
            out = window * w[i, j] if out is None else out + window * w[i, j]
    return out


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


def _resize(node, x, size, *, bilinear, scale=None):
    out_h, out_w = (int(s) for s in _static(size, node, "size"))
    if scale is not None:  # the node's upsampling factor, applied to this input (module docstring)
        out_h, out_w = x.shape[1] * scale[0], x.shape[2] * scale[1]
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
}
_RESIZES = {"ResizeBilinear": True, "ResizeNearestNeighbor": False}  # op -> bilinear


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
        known = {*OPS, *_RESIZES, "Const", "Placeholder"}
        unsupported = sorted({(n.op, n.name) for n in self._nodes if n.op not in known})
        if unsupported:
            listing = ", ".join(f"{op} (node {name})" for op, name in unsupported[:8])
            raise UnsupportedGraphError(f"{model.path}: ops not implemented by {__name__}: {listing}")
        self.input_names = tuple(n.name for n in self._nodes if n.op == "Placeholder")
        consts = [n.name for n in self._nodes if n.op == "Const"]
        self.params = {k: model.weights[k] for k in consts if model.weights[k].dtype == np.float32}
        self._static = {k: model.weights[k] for k in consts if model.weights[k].dtype != np.float32}

    def apply(self, params, *inputs, resize_scales=None):
        """The outputs; ``resize_scales`` (from ``scaled_resizes``) lets the inputs' size differ."""

        def resize(node, x, size):
            scale = None if resize_scales is None else resize_scales[node.name]
            return _resize(node, x, size, bilinear=_RESIZES[node.op], scale=scale)

        return self._evaluate(params, inputs, resize)

    def _evaluate(self, params, inputs, resize):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        values = {**self._static, **params, **dict(zip(self.input_names, inputs, strict=True))}
        for node in self._nodes:
            if node.op in ("Const", "Placeholder"):
                continue
            args = [values[_input(node, name)] for name in node.inputs]
            if node.op in _RESIZES:
                values[node.name] = resize(node, args[0], args[1])
            else:
                values[node.name] = OPS[node.op](node, args)
        return tuple(values[_source(o)[0]] for o in self.outputs)

    def scaled_resizes(self, params, *input_shapes) -> dict:
        """{resize node: (fy, fx)}, its integer upsampling factors when fed ``input_shapes``.

        A shape-only trace (``jax.eval_shape``, nothing computed); give the graph's own input
        shapes, for which its size constants were folded."""
        seen = {}

        def record(node, x, size):
            seen[node.name] = (tuple(int(s) for s in _static(size, node, "size")), tuple(x.shape[1:3]))
            return _resize(node, x, size, bilinear=_RESIZES[node.op])

        abstract = [jax.ShapeDtypeStruct(tuple(s), jnp.float32) for s in input_shapes]
        jax.eval_shape(lambda p, *xs: self._evaluate(p, xs, record), params, *abstract)
        scales = {}
        for name, ((oh, ow), (ih, iw)) in seen.items():
            if oh % ih or ow % iw:
                raise UnsupportedGraphError(
                    f"node {name}: resizes {ih}x{iw} to {oh}x{ow}, not by an integer factor, "
                    "so this graph cannot take another input size"
                )
            scales[name] = (oh // ih, ow // iw)
        return scales


def _input(node, name):
    source, index = _source(name)
    if index != 0:
        raise UnsupportedGraphError(f"node {node.name} reads output {index} of {source}")
    return source
