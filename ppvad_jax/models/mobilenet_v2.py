"""MobileNetV2 (torchvision layout, width 1.0) in Flax: a light ImageNet backbone, 1280-d features.

Layout (Sandler et al. 2018, Table 2, as torchvision builds it), chosen so torchvision's
ImageNet weights load one to one (``mobilenet_weights``):
- stem: 3x3 conv stride 2 to 32 channels, norm, ReLU6;
- 17 inverted residual blocks in 7 stages of (expansion t, channels c, blocks n, stride s):
  (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
  (6, 320, 1, 1); the stride sits in a stage's first block. A block is: 1x1 expansion conv to
  t * in channels, norm, ReLU6 (left out when t = 1); 3x3 depthwise conv (stride here), norm,
  ReLU6; 1x1 linear projection to c, norm (no activation); plus the identity when the stride
  is 1 and in == out channels;
- a 1x1 conv to 1280, norm, ReLU6; global average pool -> 1280-d features; the ImageNet head
  (torchvision: dropout 0.2, then a 1280 -> 1000 linear layer) is optional
  (``num_classes=None``), and dropout is left out: it is the identity at inference.
Every padding is explicit and symmetric (PyTorch's), never "SAME", for the reason the ResNet-50
docstring gives (SAME shifts stride-2 sampling grids by a pixel against the trained weights).

The depthwise 3x3 convs are computed as nine shifted, per-channel multiply-adds
(``DepthwiseConv``), not as XLA's grouped convolution: on the CPU backend the grouped
convolution ran 20-40x slower than the same sum of taps at stride 1 and 2.5x at stride 2,
and made the whole network no faster than ResNet-50 (BUILD_NOTES.md, "Measurements").
The parameters are the same (``kernel`` [3, 3, 1, C], Flax's grouped layout).

Input: NHWC float, preprocessed with ``resnet_preprocess`` in "torchvision" mode (RGB, /255,
ImageNet mean / std); any side >= 32 works.

Normalisation, as in ``resnet`` and for the same reason (no batch statistics under per-example
DP): ``norm="frozen_bn"`` (inference-mode BatchNorm, ``resnet.FrozenBatchNorm``, what the
ImageNet weights need) or ``norm="group"`` (GroupNorm for training from scratch, as ResNet-50
offers it). ResNet-50 uses 32 groups everywhere; MobileNetV2 has 16- and 24-channel layers,
so here a layer of C channels gets gcd(32, C) groups (16, 8 or 32).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.typing import VariableDict
from jax.typing import DTypeLike

from ppvad_jax.models import resnet

# (expansion t, output channels c, blocks n, stride of the first block s), Sandler et al.'s Table 2.
STAGES = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip
STEM_WIDTH = 32
FEATURE_DIM = 1280
NORMS = resnet.NORMS


def blocks() -> tuple[tuple[str, int, int, int, int], ...]:
    """(name, in_channels, out_channels, stride, expansion) of the 17 inverted residual blocks."""
    out, in_channels = [], STEM_WIDTH
    for expansion, channels, count, stride in STAGES:
        for i in range(count):
            out.append((f"block{len(out) + 1}", in_channels, channels, stride if i == 0 else 1, expansion))
            in_channels = channels
    return tuple(out)


# torchvision initialises MobileNetV2's convs with kaiming_normal_(mode="fan_out").
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def make_norm(
    norm: str, channels: int, dtype: DTypeLike | None, name: str
) -> resnet.FrozenBatchNorm | nn.GroupNorm:
    if norm == "frozen_bn":
        return resnet.FrozenBatchNorm(dtype=dtype, name=name)
    if norm == "group":
        groups = math.gcd(resnet.GROUPS, channels)
        return nn.GroupNorm(num_groups=groups, epsilon=resnet.BN_EPSILON, dtype=dtype, name=name)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def conv(features: int, kernel: int, stride: int, dtype: DTypeLike | None, name: str) -> nn.Conv:
    """A bias-free conv, padded (kernel - 1) // 2 on every side as torchvision pads it."""
    pad = (kernel - 1) // 2
    return nn.Conv(
        features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        use_bias=False, kernel_init=_conv_init, dtype=dtype, name=name,
    )  # fmt: skip


class DepthwiseConv(nn.Module):
    """A bias-free depthwise conv (one kh x kw filter per channel, torchvision's padding) as a sum
    of kh * kw strided slices, each times its tap's per-channel weight: elementwise work XLA fuses.

    Same parameter as ``nn.Conv(C, (k, k), feature_group_count=C)``: ``kernel`` [k, k, 1, C].
    """

    kernel_size: int
    stride: int
    dtype: object = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s, channels = self.kernel_size, self.stride, x.shape[-1]
        kernel = self.param("kernel", _conv_init, (k, k, 1, channels))
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        pad = (k - 1) // 2
        x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        n, height, width, _ = x.shape
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        out = None
        for i in range(k):
            for j in range(k):
                window = jax.lax.slice(
                    x,
                    (0, i, j, 0),
                    (n, i + s * (out_h - 1) + 1, j + s * (out_w - 1) + 1, channels),
                    (1, s, s, 1),
                )
                term = window * kernel[i, j, 0]
                out = term if out is None else out + term
        return out


class InvertedResidual(nn.Module):
    """[1x1 expand, norm, ReLU6] -> 3x3 depthwise (stride), norm, ReLU6 -> 1x1 project, norm [+ x]."""

    out_channels: int
    stride: int
    expansion: int
    norm: str
    dtype: object = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        in_channels = x.shape[-1]
        hidden = in_channels * self.expansion
        y = x
        if self.expansion != 1:
            y = conv(hidden, 1, 1, self.dtype, "expand_conv")(y)
            y = nn.relu6(make_norm(self.norm, hidden, self.dtype, "expand_bn")(y))
        y = DepthwiseConv(3, self.stride, self.dtype, name="depthwise_conv")(y)
        y = nn.relu6(make_norm(self.norm, hidden, self.dtype, "depthwise_bn")(y))
        y = conv(self.out_channels, 1, 1, self.dtype, "project_conv")(y)
        y = make_norm(self.norm, self.out_channels, self.dtype, "project_bn")(y)
        if self.stride == 1 and in_channels == self.out_channels:
            return x + y
        return y


class MobileNetV2(nn.Module):
    """Preprocessed images [N, H, W, 3] -> ``{"features": [N, 1280]}`` (+ ``"logits"`` with a head).

    Attributes:
      num_classes: size of the linear head (1000 for ImageNet), or None for features only.
      norm: "frozen_bn" or "group" (see the module docstring).
      dtype: compute dtype (e.g. jnp.bfloat16); params stay float32.
    """

    num_classes: int | None = None
    norm: str = "frozen_bn"
    dtype: object = None

    @nn.compact
    def __call__(self, images: jax.Array | np.ndarray) -> dict[str, jax.Array]:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected NHWC images [N, H, W, 3], got shape {tuple(images.shape)}")
        x = images.astype(self.dtype or jnp.float32)
        x = conv(STEM_WIDTH, 3, 2, self.dtype, "stem_conv")(x)
        x = nn.relu6(make_norm(self.norm, STEM_WIDTH, self.dtype, "stem_bn")(x))
        for name, _, out_channels, stride, expansion in blocks():
            x = InvertedResidual(out_channels, stride, expansion, self.norm, self.dtype, name=name)(x)
        x = conv(FEATURE_DIM, 1, 1, self.dtype, "last_conv")(x)
        x = nn.relu6(make_norm(self.norm, FEATURE_DIM, self.dtype, "last_bn")(x))
        features = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        out = {"features": features}
        if self.num_classes is not None:
            logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(features)
            out["logits"] = logits.astype(jnp.float32)
        return out


def init_variables(model: nn.Module, key: jax.Array, *, size: int = 64) -> VariableDict:
    """Random variables for ``model`` (params, plus batch_stats with frozen_bn), jitted init."""
    return jax.jit(model.init)(key, jnp.zeros((1, size, size, 3), jnp.float32))


def variable_shapes(model: nn.Module, *, size: int = 64) -> VariableDict:
    """The variable tree as ShapeDtypeStructs, without allocating or computing anything."""
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3), jnp.float32))
