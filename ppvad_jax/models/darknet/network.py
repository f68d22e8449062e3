"""A darknet network (YOLOv4, YOLOv4-tiny) as a Flax module built from a parsed cfg.

Input: ``[batch, height, width, channels]`` float32 in [0, 1], RGB (darknet loads images as
RGB scaled by 1/255; with OpenCV that is ``blobFromImage(bgr, 1/255, swapRB=True)``).
Height and width need not be the cfg's: any size whose layers stay consistent works (for
YOLOv4 and YOLOv4-tiny, multiples of 32); each size compiles once under jit.

Variables, keyed by darknet layer index (``layer_007`` is the 8th section after ``[net]``):
- ``params/layer_NNN/kernel``: [size, size, in_channels / groups, filters] (HWIO; the file
  stores OIHW), ``params/layer_NNN/bias`` (darknet's ``biases``: the BN beta when the layer
  has batch_normalize, else the conv bias), ``params/layer_NNN/scale`` (BN gamma);
- ``batch_stats/layer_NNN/mean`` and ``batch_stats/layer_NNN/var``: darknet's rolling mean and
  variance, used as fixed inference statistics (the module never updates them).

Batch norm is ``gamma * (x - mean) / sqrt(var + eps) + beta`` with ``eps = 1e-5``, what
AlexeyAB's darknet computes at inference (``fuse_conv_batchnorm`` and ``normalize_gpu`` add
.00001 under the square root). OpenCV's darknet importer uses 1e-6; pjreddie's CPU code uses
``sqrt(var) + 1e-6``. For trained weights (variances far above 1e-5) the three agree to
float32 precision; ``bn_epsilon`` selects one, and the OpenCV cross-check sets 1e-6.

Cost: a per-channel multiply-add after each convolution, fused by XLA with the activation
into one elementwise pass; folding BN into the kernel instead would trade it for a rescale
of the (for YOLOv4, 64M-value) kernels on every call.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from ppvad_jax.models.darknet import cfg, decode, shapes


def layer_name(index: int) -> str:
    return f"layer_{index:03d}"


def mish(x: jax.Array) -> jax.Array:
    """x * tanh(softplus(x)) with one exp: tanh(log(1 + e)) = n / (n + 2), n = e * (e + 2), e = exp(x).

    Within 5e-7 (relative) of the tanh/softplus form and 3-10x faster on CPU (34 ms vs 3-11 ms
    for a 208x208x64 map on 2 cores): YOLOv4's backbone applies it to 44M values per 416x416
    frame. Above 20, mish(x) = x in float32 (darknet's softplus threshold is 20 too).
    """
    e = jnp.exp(jnp.minimum(x, 20.0))
    n = e * (e + 2.0)
    return jnp.where(x > 20.0, x, x * n / (n + 2.0))


def activate(x: jax.Array, activation: str) -> jax.Array:
    """Darknet activations: leaky has slope 0.1; mish = x * tanh(softplus(x))."""
    if activation == "linear":
        return x
    if activation == "leaky":
        return jnp.where(x > 0, x, 0.1 * x)
    if activation == "logistic":
        return jax.nn.sigmoid(x)
    if activation == "mish":
        return mish(x)
    if activation == "swish":
        return x * jax.nn.sigmoid(x)
    raise ValueError(f"unknown activation {activation!r}")


class DarknetConv(nn.Module):
    """Darknet ``[convolutional]``: symmetric zero padding, optional inference batch norm."""

    layer: cfg.Convolutional
    in_channels: int
    bn_epsilon: float = 1e-5
    use_running_average: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        spec = self.layer
        kernel_shape = (spec.size, spec.size, self.in_channels // spec.groups, spec.filters)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), kernel_shape)
        bias = self.param("bias", nn.initializers.zeros_init(), (spec.filters,))
        pad = (spec.padding, spec.padding)
        y = lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(spec.stride, spec.stride),
            padding=(pad, pad),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=spec.groups,
        )
        if spec.batch_normalize:
            scale = self.param("scale", nn.initializers.ones_init(), (spec.filters,))
            running_mean = self.variable("batch_stats", "mean", jnp.zeros, (spec.filters,))
            running_var = self.variable("batch_stats", "var", jnp.ones, (spec.filters,))
            if self.use_running_average:
                mean, var = running_mean.value, running_var.value
            else:  # the input batch's own statistics, stored when batch_stats is mutable
                mean, var = jnp.mean(y, axis=(0, 1, 2)), jnp.var(y, axis=(0, 1, 2))
                if self.is_mutable_collection("batch_stats"):
                    running_mean.value, running_var.value = mean, var
            multiplier = scale * lax.rsqrt(var + self.bn_epsilon)
            y = y * multiplier + (bias - mean * multiplier)
        else:
            y = y + bias
        return activate(y, spec.activation)


def max_pool(x: jax.Array, layer: cfg.MaxPool) -> jax.Array:
    """Darknet max pooling: ``padding // 2`` of -inf before, the rest after (darknet's offset
    ``-pad / 2``; OpenCV's importer: pad_l = floor(pad / 2), pad_r = ceil(pad / 2))."""
    before = layer.padding // 2
    pads = ((0, 0), (before, layer.padding - before), (before, layer.padding - before), (0, 0))
    window = (1, layer.size, layer.size, 1)
    strides = (1, layer.stride, layer.stride, 1)
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads)


def upsample(x: jax.Array, layer: cfg.Upsample) -> jax.Array:
    """Nearest-neighbour upsampling by an integer stride, times ``scale`` (darknet's)."""
    x = jnp.repeat(jnp.repeat(x, layer.stride, axis=1), layer.stride, axis=2)
    return x if layer.scale == 1.0 else x * layer.scale


def route(inputs: list[jax.Array], layer: cfg.Route) -> jax.Array:
    """Channel group ``group_id`` of ``groups`` of each input, concatenated over channels."""
    parts = []
    for x in inputs:
        size = x.shape[-1] // layer.groups
        parts.append(x[..., layer.group_id * size : (layer.group_id + 1) * size])
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


class DarknetOutputs(NamedTuple):
    raw: tuple[jax.Array, ...]  # per yolo layer: [batch, rows, cols, anchors, 5 + classes]
    decoded: decode.Decoded
    captured: dict[int, jax.Array]  # NHWC outputs of the layers asked for in ``capture``


class Darknet(nn.Module):
    """The network a cfg describes.

    Attributes:
      config: the parsed cfg.
      bn_epsilon: see the module docstring.
      use_running_average: False normalizes with the batch's own statistics (and, when
        ``batch_stats`` is mutable, stores them: ``weights.calibrate_batch_stats``).
    """

    config: cfg.DarknetConfig
    bn_epsilon: float = 1e-5
    use_running_average: bool = True

    @nn.compact
    def __call__(self, images: jax.Array, *, capture: tuple[int, ...] = ()) -> DarknetOutputs:
        """Runs the network.

        Args:
          images: [batch, height, width, channels] float in [0, 1], RGB.
          capture: darknet layer indices whose NHWC outputs to return too (for debugging
            and cross-checks; a yolo layer's is its raw output, flattened to channels).

        Returns:
          DarknetOutputs: raw yolo outputs, decoded boxes, captured layer outputs.
        """
        if images.ndim != 4 or images.shape[-1] != self.config.net.channels:
            raise ValueError(
                f"expected [batch, height, width, {self.config.net.channels}], got {images.shape}"
            )
        if not jnp.issubdtype(images.dtype, jnp.floating):
            raise ValueError(f"expected float images in [0, 1] (darknet scales by 1/255), got {images.dtype}")
        height, width = images.shape[1:3]
        # Validates the cfg at this size (errors name the cfg line) before any tracing.
        layer_shapes = shapes.infer_shapes(self.config, height=height, width=width)
        in_channels = [images.shape[-1]] + [s.channels for s in layer_shapes[:-1]]
        outputs: list[jax.Array] = []
        raws = []
        x = images
        for layer in self.config.layers:
            if isinstance(layer, cfg.Convolutional):
                x = DarknetConv(
                    layer,
                    in_channels[layer.index],
                    self.bn_epsilon,
                    self.use_running_average,
                    name=layer_name(layer.index),
                )(x)
            elif isinstance(layer, cfg.MaxPool):
                x = max_pool(x, layer)
            elif isinstance(layer, cfg.Upsample):
                x = upsample(x, layer)
            elif isinstance(layer, cfg.Route):
                x = route([outputs[i] for i in layer.layers], layer)
            elif isinstance(layer, cfg.Shortcut):
                x = activate(x + outputs[layer.source], layer.activation)
            elif isinstance(layer, cfg.Yolo):
                raw = decode.activate_yolo(x, layer)
                raws.append(raw)
                x = raw.reshape(x.shape)
            else:
                raise TypeError(f"unhandled layer {layer!r}")
            outputs.append(x)
        decoded = decode.decode(raws, self.config.yolo_layers, input_height=height, input_width=width)
        return DarknetOutputs(tuple(raws), decoded, {i: outputs[i] for i in capture})
