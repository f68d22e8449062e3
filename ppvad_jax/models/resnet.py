"""ResNet-50 (torchvision v1.5 layout) in Flax: the backbone of both streams (paper section 3.4.2).

Layout, chosen so torchvision's ImageNet weights load one to one (``resnet_weights``):
- conv1 7x7 stride 2 pad 3, norm, ReLU, max-pool 3x3 stride 2 pad 1 (padding is -inf);
- four stages of (3, 4, 6, 3) bottlenecks, widths 64..512, expansion 4; the stride 2 sits
  in the bottleneck's 3x3 conv (v1.5, as torchvision; Caffe's v1 put it in the first 1x1);
- every padding is written out (symmetric, as PyTorch), never "SAME": SAME pads stride-2
  convs asymmetrically (0 before, 1 after on even sides), which shifts the sampling grid
  by a pixel against the one the PyTorch weights were trained on (measured: 9% relative
  feature error against the PyTorch reference of tests/test_resnet.py, instead of 2e-7);
- global average pool -> 2048-d features; the fc head is optional (``num_classes=None``).

Input: NHWC float, already preprocessed (``resnet_preprocess``); any side >= 32 works.

Normalisation. There are no train-mode batch statistics anywhere, on purpose: DP-SGD
clips each example's gradient, and batch statistics would make one example's output (and
gradient) depend on the others in its batch, which breaks the per-example sensitivity
bound (jax_privacy's "sharp edges" note). Two options instead:
- ``norm="frozen_bn"``: BatchNorm in inference mode, a per-channel affine computed from the
  stored running mean / variance (collection ``batch_stats``, never updated) and the learned
  scale / bias (``params``). This is what pretrained ImageNet weights need.
- ``norm="group"``: GroupNorm with 32 groups (per example by construction), for training
  from scratch; torchvision's BN weights do not transfer to it.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.typing import VariableDict
from jax.typing import DTypeLike

STAGE_SIZES = (3, 4, 6, 3)
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
FEATURE_DIM = STAGE_WIDTHS[-1] * EXPANSION  # 2048
NORMS = ("frozen_bn", "group")
BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d's default, what the weights were trained with
GROUPS = 32

# torchvision initialises convs with kaiming_normal_(mode="fan_out", nonlinearity="relu").
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class FrozenBatchNorm(nn.Module):
    """BatchNorm in inference mode only: ``(x - mean) / sqrt(var + eps) * scale + bias``.

    Folded into one per-channel multiply-add (cheap: C values per layer). ``mean`` / ``var``
    live in ``batch_stats`` and are read, never written: no ``mutable`` is needed at apply.
    """

    epsilon: float = BN_EPSILON
    dtype: object = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        mean = self.variable("batch_stats", "mean", jnp.zeros, (channels,)).value
        var = self.variable("batch_stats", "var", jnp.ones, (channels,)).value
        # Statistics are constants here: no gradient flows into them even if a caller
        # passes batch_stats inside the differentiated tree.
        mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
        mul = scale * jax.lax.rsqrt(var + self.epsilon)
        add = bias - mean * mul
        dtype = self.dtype or x.dtype
        return x * mul.astype(dtype) + add.astype(dtype)


def make_norm(norm: str, dtype: DTypeLike | None, name: str) -> FrozenBatchNorm | nn.GroupNorm:
    if norm == "frozen_bn":
        return FrozenBatchNorm(dtype=dtype, name=name)
    if norm == "group":
        return nn.GroupNorm(num_groups=GROUPS, epsilon=BN_EPSILON, dtype=dtype, name=name)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def conv(features: int, kernel: int, stride: int, pad: int, dtype: DTypeLike | None, name: str) -> nn.Conv:
    """A bias-free conv with PyTorch's symmetric explicit padding."""
    return nn.Conv(
        features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        use_bias=False, kernel_init=_conv_init, dtype=dtype, name=name,
    )  # fmt: skip


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here, v1.5) -> 1x1 x4, plus identity or 1x1 strided projection."""

    width: int
    stride: int
    norm: str
    dtype: object = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out_features = self.width * EXPANSION
        y = conv(self.width, 1, 1, 0, self.dtype, "conv1")(x)
        y = nn.relu(make_norm(self.norm, self.dtype, "bn1")(y))
        y = conv(self.width, 3, self.stride, 1, self.dtype, "conv2")(y)
        y = nn.relu(make_norm(self.norm, self.dtype, "bn2")(y))
        y = conv(out_features, 1, 1, 0, self.dtype, "conv3")(y)
        y = make_norm(self.norm, self.dtype, "bn3")(y)
        if self.stride != 1 or x.shape[-1] != out_features:
            x = conv(out_features, 1, self.stride, 0, self.dtype, "downsample_conv")(x)
            x = make_norm(self.norm, self.dtype, "downsample_bn")(x)
        return nn.relu(x + y)


class ResNet50(nn.Module):
    """Preprocessed images [N, H, W, 3] -> ``{"features": [N, 2048]}`` (+ ``"logits"`` with a head).

    Attributes:
      num_classes: size of the fc head, or None for features only (the anomaly classifier
        puts its own head on the pooled features).
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
        x = conv(64, 7, 2, 3, self.dtype, "conv1")(x)
        x = nn.relu(make_norm(self.norm, self.dtype, "bn1")(x))
        # reduce_window pads with its init value, -inf for max: PyTorch's MaxPool2d padding.
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, (blocks, width) in enumerate(zip(STAGE_SIZES, STAGE_WIDTHS, strict=True)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = Bottleneck(width, stride, self.norm, self.dtype, name=f"layer{stage + 1}_{block}")(x)
        features = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        out = {"features": features}
        if self.num_classes is not None:
            out["logits"] = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(features).astype(
                jnp.float32
            )
        return out


def init_variables(model: nn.Module, key: jax.Array, *, size: int = 64) -> VariableDict:
    """Random variables for ``model`` (params, plus batch_stats with frozen_bn), jitted init.

    Variable shapes do not depend on the image size; a small one keeps the init pass cheap.
    """
    return jax.jit(model.init)(key, jnp.zeros((1, size, size, 3), jnp.float32))


def variable_shapes(model: nn.Module, *, size: int = 64) -> VariableDict:
    """The variable tree as ShapeDtypeStructs, without allocating or computing anything."""
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3), jnp.float32))
