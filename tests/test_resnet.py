"""ResNet-50: the Flax model with converted weights against an independent PyTorch reference.

The reference is built here from plain torch.nn modules with torchvision's key names
(torchvision itself is not a dependency), given random weights and non-trivial BatchNorm
running statistics, saved as .pth, .safetensors and .npz, and converted from each.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import logging as absl_logging
from flax import traverse_util

from ppvad_jax.models import resnet, resnet_preprocess, resnet_weights

NUM_CLASSES = 1000  # torchvision's head, so the fc mapping is exercised at full size


def torch_resnet50(num_classes=NUM_CLASSES, seed=0):
    """A torchvision-layout ResNet-50 (v1.5) in eval mode, random weights and BN statistics."""
    import torch  # noqa: PLC0415 - torch is a test-only, optional dependency
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, in_channels, width, stride):
            super().__init__()
            out_channels = width * 4
            self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or in_channels != out_channels:
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            in_channels = 64
            for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
                layers = []
                for block in range(blocks):
                    layers.append(Bottleneck(in_channels, width, 2 if stage > 0 and block == 0 else 1))
                    in_channels = width * 4
                setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            features = torch.flatten(self.avgpool(x), 1)
            return features, self.fc(features)

    torch.manual_seed(seed)
    model = ResNet50()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


def fake_state_dict(num_classes=NUM_CLASSES):
    """Zero arrays under torchvision's keys and shapes, made from the Flax tree (no torch needed)."""
    shapes = traverse_util.flatten_dict(resnet.variable_shapes(resnet.ResNet50(num_classes=num_classes)))
    state = {}
    for path, leaf in shapes.items():
        shape = leaf.shape
        if path[-1] == "kernel":  # HWIO -> OIHW; [in, out] -> [out, in]
            shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]
        state[resnet_weights.torch_key(path)] = np.zeros(shape, np.float32)
    return state


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The torch model and its state_dict written in the three supported formats."""
    torch = pytest.importorskip("torch")
    model = torch_resnet50()
    out = tmp_path_factory.mktemp("resnet_weights")
    state = model.state_dict()
    assert any(k.endswith("num_batches_tracked") for k in state)  # present, and must be ignored
    torch.save(state, out / "resnet50.pth")
    arrays = {k: v.numpy() for k, v in state.items()}
    resnet_weights.save_safetensors(out / "resnet50.safetensors", arrays)
    np.savez(out / "resnet50.npz", **arrays)
    return model, out


def torch_forward(model, images_nhwc):
    import torch  # noqa: PLC0415

    with torch.no_grad():
        features, logits = model(torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))))
    return features.numpy(), logits.numpy()


_apply = jax.jit(lambda variables, images: resnet.ResNet50(num_classes=NUM_CLASSES).apply(variables, images))


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "npz"])
def test_converted_weights_match_torch(reference, tmp_path, fmt):
    model, weights_dir = reference
    out_dir = resnet_weights.convert_torchvision(weights_dir / f"resnet50.{fmt}", tmp_path / "converted")
    flax_model, variables, spec = resnet_weights.load_converted(out_dir)
    assert (flax_model.num_classes, flax_model.norm) == (NUM_CLASSES, "frozen_bn")
    assert spec["preprocessing"] == "torchvision" and spec["source"]["file"] == f"resnet50.{fmt}"
    assert len(spec["source"]["sha256"]) == 64 and json.loads((out_dir / "spec.json").read_text()) == spec
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    want_features, want_logits = torch_forward(model, images)
    got = _apply(variables, jnp.asarray(images))
    assert got["features"].shape == (2, resnet.FEATURE_DIM)
    assert relative_error(got["features"], want_features) < 1e-4
    assert relative_error(got["logits"], want_logits) < 1e-4


def test_matches_torch_at_224_through_preprocessing(reference, tmp_path):
    """Full resolution, uint8 frames through the "torchvision" preprocessing on both sides."""
    model, weights_dir = reference
    out_dir = resnet_weights.convert_torchvision(weights_dir / "resnet50.safetensors", tmp_path / "c")
    _, variables, spec = resnet_weights.load_converted(out_dir)
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    images = resnet_preprocess.preprocess(frames, mode=spec["preprocessing"])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    torch_images = ((frames / 255.0 - mean) / std).astype(np.float32)  # computed independently
    want_features, want_logits = torch_forward(model, torch_images)
    got = _apply(variables, images)
    assert relative_error(got["features"], want_features) < 1e-4
    assert relative_error(got["logits"], want_logits) < 1e-4


def test_missing_unknown_and_misshapen_keys_are_listed():
    state = fake_state_dict()
    state["bn1.num_batches_tracked"] = np.zeros((), np.int64)  # ignored
    model, variables = resnet_weights.torchvision_to_flax(state)
    assert model.num_classes == NUM_CLASSES and variables["params"]["fc"]["kernel"].shape == (2048, 1000)

    missing = dict(state)
    del missing["layer3.2.bn2.running_var"]
    with pytest.raises(KeyError, match=r"1 missing key\(s\): \[layer3\.2\.bn2\.running_var\]"):
        resnet_weights.torchvision_to_flax(missing)

    unknown = {**state, "layer5.0.conv1.weight": np.zeros((1,), np.float32)}
    with pytest.raises(KeyError, match=r"1 unknown key\(s\): \[layer5\.0\.conv1\.weight\]"):
        resnet_weights.torchvision_to_flax(unknown)

    misshapen = {**state, "layer1.0.conv2.weight": np.zeros((64, 64, 1, 3), np.float32)}
    with pytest.raises(ValueError, match=r"layer1\.0\.conv2\.weight"):
        resnet_weights.torchvision_to_flax(misshapen)

    headless = {k: v for k, v in state.items() if not k.startswith("fc.")}
    model, variables = resnet_weights.torchvision_to_flax(headless)
    assert model.num_classes is None and "fc" not in variables["params"]


def test_missing_pretrained_dir_says_what_to_download_and_run(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        resnet_weights.load_backbone(tmp_path / "resnet50_flax")
    message = str(error.value)
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in message
    assert "resnet50-0676ba61.pth" in message
    expected = "python -m launch.convert_weights --from=torchvision --input=/path/to/resnet50-11ad3fa6.pth"
    assert f"{expected} --output={tmp_path / 'resnet50_flax'}" in message


def test_group_norm_random_init_is_flagged_and_per_example(monkeypatch):
    warnings = []
    monkeypatch.setattr(
        absl_logging, "warning", lambda msg, *args: warnings.append(msg % args if args else msg)
    )
    backbone = resnet_weights.load_backbone(None, norm="group")
    assert backbone.random_init and backbone.spec["random_init"] and "batch_stats" not in backbone.variables
    assert (
        len(warnings) == 1
        and "RANDOM INITIALISATION" in warnings[0]
        and "launch.convert_weights" in warnings[0]
    )

    apply = jax.jit(backbone.model.apply)
    images = np.random.default_rng(2).normal(size=(3, 32, 32, 3)).astype(np.float32)
    before = np.asarray(apply(backbone.variables, images)["features"])
    images[0] = np.random.default_rng(3).normal(size=images[0].shape)
    after = np.asarray(apply(backbone.variables, images)["features"])
    assert np.all(np.isfinite(before)) and not np.allclose(before[0], after[0])
    np.testing.assert_allclose(after[1:], before[1:], rtol=1e-6, atol=1e-6)


def test_preprocessing_modes_on_a_hand_built_pixel():
    rgb = np.array([10.0, 20.0, 30.0])
    frames = np.broadcast_to(rgb, (1, 4, 6, 3)).astype(np.uint8)  # constant: resizing keeps it
    caffe = resnet_preprocess.preprocess(frames, mode="caffe_bgr")
    assert caffe.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(caffe[0, 100, 50], [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-4)
    tv = resnet_preprocess.preprocess(frames, mode="torchvision")
    want = [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(tv[0, 7, 200], want, atol=1e-5)
    from_unit = resnet_preprocess.preprocess(frames / 255.0, mode="caffe_bgr", value_range=1.0)
    np.testing.assert_allclose(from_unit, caffe, atol=1e-4)
    with pytest.raises(ValueError, match="caffe_bgr"):
        resnet_preprocess.normalize(frames, mode="keras")


def test_safetensors_round_trip_dtypes(tmp_path):
    tensors = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1, -2], np.int64),
        "c": np.zeros((0, 4), np.float16),
    }
    back = resnet_weights.read_safetensors(
        resnet_weights.save_safetensors(tmp_path / "t.safetensors", tensors)
    )
    assert back.keys() == tensors.keys()
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array)
