"""Darknet cfg parser, .weights reader/writer, layers, NMS, bag of objects, conversion, CLI.

The cross-checks against OpenCV's darknet importer are in test_darknet_opencv.py.
"""

import collections
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppvad_jax.models.darknet import bag_of_objects, cfg, convert, detect, network, nms, shapes, weights

ROOT = pathlib.Path(__file__).resolve().parents[1]
DARKNET_CANDIDATES = (ROOT / "tests/data/darknet", ROOT / "shared/data/darknet")


@pytest.fixture(scope="module")
def darknet_dir():
    for candidate in DARKNET_CANDIDATES:
        if (candidate / "yolov4.cfg").is_file():
            return candidate
    pytest.fail(f"darknet cfgs not found in any of {[str(c) for c in DARKNET_CANDIDATES]}")


def small_cfg(darknet_dir, name, size):
    text = cfg.with_input_size((darknet_dir / f"{name}.cfg").read_text(), height=size, width=size)
    return text, cfg.parse_cfg(text, f"{name}.cfg")


# --- cfg parser --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["yolov4", "yolov4-tiny"])
def test_shipped_cfgs_parse_to_the_sections_in_the_file(darknet_dir, name):
    text = (darknet_dir / f"{name}.cfg").read_text()
    # Independent count: section headers at the start of a line, [net] excluded.
    headers = [
        (m.group(1), text[: m.start()].count("\n") + 1) for m in re.finditer(r"^\[(\w+)\]", text, re.M)
    ]
    assert headers[0][0] == "net"
    config = cfg.load_cfg(darknet_dir / f"{name}.cfg")
    assert len(config.layers) == len(headers) - 1
    assert [type(layer).__name__.lower() for layer in config.layers] == [kind for kind, _ in headers[1:]]
    assert [layer.line for layer in config.layers] == [line for _, line in headers[1:]]
    counts = collections.Counter(type(layer).__name__ for layer in config.layers)
    if name == "yolov4":
        assert len(config.layers) == 162
        assert counts == {
            "Convolutional": 110,
            "Shortcut": 23,
            "Route": 21,
            "MaxPool": 3,
            "Upsample": 2,
            "Yolo": 3,
        }
        assert (config.net.height, config.net.width, config.net.channels) == (608, 608, 3)
        assert sum(isinstance(x, cfg.Convolutional) and x.activation == "mish" for x in config.layers) == len(
            re.findall(r"^activation=mish", text, re.M)
        )
        spp = [layer for layer in config.layers if isinstance(layer, cfg.MaxPool)]
        assert [(p.size, p.stride, p.padding) for p in spp] == [(5, 1, 4), (9, 1, 8), (13, 1, 12)]
        assert [y.scale_x_y for y in config.yolo_layers] == [1.2, 1.1, 1.05]
        assert config.yolo_layers[2].anchors == ((142, 110), (192, 243), (459, 401))
        grids = [
            s.height
            for i, s in enumerate(shapes.infer_shapes(config, height=416, width=416))
            if i in (139, 150, 161)
        ]
        assert grids == [52, 26, 13]
    else:
        assert len(config.layers) == 38
        assert counts == {"Convolutional": 21, "Route": 11, "MaxPool": 3, "Upsample": 1, "Yolo": 2}
        assert config.layers[3] == cfg.Route(index=3, line=headers[4][1], layers=(2,), groups=2, group_id=1)
        assert config.layers[34].layers == (33, 23)  # "layers = -1, 23": negative and absolute
        assert config.layers[1] == cfg.Convolutional(1, headers[2][1], 64, 3, 2, 1, 1, True, "leaky")
        assert config.yolo_layers[0].anchors == ((81, 82), (135, 169), (344, 319))
        grids = [s.height for i, s in enumerate(shapes.infer_shapes(config)) if i in (30, 37)]
        assert grids == [13, 26]
    assert all(y.classes == 80 for y in config.yolo_layers)
    hash(config)  # a static jit argument and a Flax module attribute


BASE = """[net]
height=32
width=32
channels=3

[convolutional]
batch_normalize=1
filters=18
size=3
stride=1
pad=1
activation=leaky
"""


@pytest.mark.parametrize(
    "tail, line, message",
    [
        ("[route]\nlayers -1\n", 15, "expected 'key=value'"),
        ("[dropout]\nprobability=.5\n", 14, "unknown or unsupported layer type [dropout]"),
        ("[maxpool]\nsize=two\n", 15, "size='two': expected an integer"),
        ("[route]\nlayers=-2\n", 15, "refers to layer -2"),
        ("[route]\nlayers=5\n", 15, "refers to layer 5"),
        ("[convolutional]\nfilters=8\ndilation=2\nsize=3\n", 16, "dilation=2 is not supported"),
        ("[convolutional]\nfilters=8\nactivation=gelu\n", 16, "activation='gelu' is not supported"),
        ("[maxpool]\nsize=2\nsize=3\n", 16, "option 'size' repeated"),
        ("[yolo]\nmask=0,1,7\nanchors=1,2,3,4,5,6\nnum=3\n", 15, "must index anchors"),
        ("[yolo\n", 14, "malformed section header"),
        ("[route]\ngroups=2\n", 14, "needs option 'layers'"),
    ],
)
def test_malformed_cfg_errors_name_file_and_line(tail, line, message):
    with pytest.raises(cfg.CfgError) as error:
        cfg.parse_cfg(BASE + "\n" + tail, "bad.cfg")
    assert str(error.value).startswith(f"bad.cfg:{line}:")
    assert message in str(error.value)


def test_cfg_errors_before_the_first_layer():
    with pytest.raises(cfg.CfgError, match=r"^x.cfg:1: option 'width' before the first \[section\]"):
        cfg.parse_cfg("width=3\n[net]\n", "x.cfg")
    with pytest.raises(cfg.CfgError, match=r"^x.cfg:2: the first section must be \[net\]"):
        cfg.parse_cfg("# comment\n[convolutional]\nfilters=1\n", "x.cfg")
    with pytest.raises(cfg.CfgError, match=r"^x.cfg:1: \[net\] needs option 'height'"):
        cfg.parse_cfg("[net]\nwidth=3\n[maxpool]\n", "x.cfg")


def test_cfg_comments_spaces_and_defaults():
    config = cfg.parse_cfg(
        BASE + "; a comment\n[maxpool]\n  stride = 2 # inline comment\n[yolo]\nanchors = 1,2, 3,4,\n"
        "classes=1\nnum=2\nmask=1\n[upsample]\n",
        "ok.cfg",
    )
    pool, yolo, up = config.layers[1:]
    assert (pool.size, pool.stride, pool.padding) == (2, 2, 1)  # darknet: size=stride, padding=size-1
    assert (yolo.anchors, yolo.mask, yolo.scale_x_y) == (((3.0, 4.0),), (1,), 1.0)
    assert (up.stride, up.scale) == (2, 1.0)
    conv = cfg.parse_cfg("[net]\nheight=8\nwidth=8\n[convolutional]\nfilters=2\nsize=3\npad=1\n").layers[0]
    assert (conv.activation, conv.padding, conv.batch_normalize) == ("logistic", 1, False)  # darknet defaults


def test_shape_errors_name_the_layer_line():
    text = BASE + "\n[yolo]\nanchors=1,2,3,4\nnum=2\nclasses=2\n"  # 18 channels, 2 * (5 + 2) = 14 needed
    with pytest.raises(cfg.CfgError, match=r"^s.cfg:14: layer 1 \(yolo\): input has 18 channels"):
        shapes.infer_shapes(cfg.parse_cfg(text, "s.cfg"))
    text = BASE + "\n[maxpool]\nsize=2\nstride=2\n\n[route]\nlayers=-1,-2\n"
    with pytest.raises(cfg.CfgError, match=r"^s.cfg:18: layer 2 \(route\): inputs differ in spatial size"):
        shapes.infer_shapes(cfg.parse_cfg(text, "s.cfg"))


def test_with_input_size_rewrites_only_net(darknet_dir):
    text, config = small_cfg(darknet_dir, "yolov4", 96)
    assert (config.net.height, config.net.width) == (96, 96)
    assert text.count("width=96") == 1 and "#width=512" in text
    assert cfg.parse_cfg(text).layers == cfg.load_cfg(darknet_dir / "yolov4.cfg").layers


# --- .weights ----------------------------------------------------------------------------------------


def test_weights_round_trip_and_layout(darknet_dir, tmp_path):
    _, config = small_cfg(darknet_dir, "yolov4-tiny", 64)
    layers = weights.random_weights(config, seed=3)
    path = tmp_path / "t.weights"
    weights.write_weights(path, config, layers, weights.Header(0, 2, 5, seen=123456789012))
    header, read = weights.read_weights(path, config)
    assert header == weights.Header(0, 2, 5, 123456789012)
    assert sorted(read) == [
        i for i, layer in enumerate(config.layers) if isinstance(layer, cfg.Convolutional)
    ]
    for index, w in layers.items():
        for a, b in zip(w.arrays(), read[index].arrays(), strict=True):
            np.testing.assert_array_equal(a, b)
    # The layout, read by hand: header 3 x int32 + uint64 seen; layer 0 (BN, 32 filters, 3x3x3).
    raw = path.read_bytes()
    assert (
        len(raw)
        == weights.expected_nbytes(config)
        == 20
        + 4 * sum(w.bias.size * (4 if w.scale is not None else 1) + w.kernel.size for w in layers.values())
    )
    assert np.frombuffer(raw[12:20], "<u8")[0] == 123456789012
    floats = np.frombuffer(raw[20 : 20 + 4 * (4 * 32 + 32 * 27)], "<f4")
    np.testing.assert_array_equal(floats[:32], layers[0].bias)
    np.testing.assert_array_equal(floats[32:64], layers[0].scale)
    np.testing.assert_array_equal(floats[96:128], layers[0].rolling_variance)
    np.testing.assert_array_equal(floats[128:].reshape(32, 3, 3, 3), layers[0].kernel)
    # Flax variables: HWIO kernels, and back.
    variables = weights.to_variables(config, read)
    np.testing.assert_array_equal(
        variables["params"]["layer_000"]["kernel"][1, 2, 0, 5], layers[0].kernel[5, 0, 1, 2]
    )
    assert "scale" not in variables["params"]["layer_029"]  # the head conv: bias, no BN
    back = weights.from_variables(config, variables)
    np.testing.assert_array_equal(back[29].kernel, layers[29].kernel)
    np.testing.assert_array_equal(back[36].bias, layers[36].bias)


def test_weights_old_header_has_32_bit_seen(darknet_dir, tmp_path):
    _, config = small_cfg(darknet_dir, "yolov4-tiny", 64)
    path = tmp_path / "old.weights"
    weights.write_weights(
        path, config, weights.random_weights(config, seed=0), weights.Header(0, 1, 0, seen=77)
    )
    assert path.stat().st_size == weights.expected_nbytes(config) - 4
    assert weights.read_weights(path, config)[0] == weights.Header(0, 1, 0, 77)


def test_truncated_and_overlong_weights_errors(darknet_dir, tmp_path):
    _, config = small_cfg(darknet_dir, "yolov4-tiny", 64)
    path = tmp_path / "t.weights"
    weights.write_weights(path, config, weights.random_weights(config, seed=0))
    raw = path.read_bytes()
    total = len(raw)
    # Cut inside layer 29 (the first 255-filter head conv): everything before it is complete.
    start_29 = 20 + 4 * sum(
        (4 if layer.batch_normalize else 1) * layer.filters + int(np.prod(shape))
        for layer, shape in weights.conv_layers(config)
        if layer.index < 29
    )
    (tmp_path / "cut.weights").write_bytes(raw[: start_29 + 100])
    with pytest.raises(weights.WeightsError) as error:
        weights.read_weights(tmp_path / "cut.weights", config)
    message = str(error.value)
    assert "cut.weights" in message and "truncated at layer 29" in message
    assert f"the file has {start_29 + 100} bytes" in message and f"expected {total} bytes" in message
    (tmp_path / "long.weights").write_bytes(raw + b"\0" * 8)
    with pytest.raises(
        weights.WeightsError, match=rf"long.weights: {total + 8} bytes, but .* needs exactly {total}"
    ):
        weights.read_weights(tmp_path / "long.weights", config)
    (tmp_path / "tiny.weights").write_bytes(raw[:10])
    with pytest.raises(weights.WeightsError, match="too short for a darknet header"):
        weights.read_weights(tmp_path / "tiny.weights", config)


# --- layers against direct numpy references ----------------------------------------------------------


def darknet_maxpool_reference(x, size, stride, padding):
    """Darknet's forward_maxpool_layer loop: offset -padding // 2, out-of-range taps ignored."""
    h, w = x.shape[:2]
    out_h, out_w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    offset = -(padding // 2)
    out = np.full((out_h, out_w, x.shape[2]), -np.inf, np.float32)
    for i in range(out_h):
        for j in range(out_w):
            for n in range(size):
                for m in range(size):
                    r, c = offset + i * stride + n, offset + j * stride + m
                    if 0 <= r < h and 0 <= c < w:
                        out[i, j] = np.maximum(out[i, j], x[r, c])
    return out


@pytest.mark.parametrize(
    "size, stride, padding, hw", [(2, 2, 1, 7), (2, 1, 1, 5), (5, 1, 4, 6), (3, 2, 2, 9)]
)
def test_maxpool_matches_darknet_loop(size, stride, padding, hw):
    x = np.random.default_rng(0).standard_normal((hw, hw + 1, 3)).astype(np.float32)
    layer = cfg.MaxPool(index=0, line=1, size=size, stride=stride, padding=padding)
    np.testing.assert_array_equal(
        network.max_pool(jnp.asarray(x[None]), layer)[0], darknet_maxpool_reference(x, size, stride, padding)
    )


def test_mish_matches_its_definition():
    x = np.concatenate([np.linspace(-30, 30, 6001), [-1e4, -88.0, 19.99, 20.0, 20.01, 88.0, 1e4]]).astype(
        np.float32
    )
    expected = x.astype(np.float64) * np.tanh(np.logaddexp(0.0, x.astype(np.float64)))
    got = np.asarray(network.activate(jnp.asarray(x), "mish"), np.float64)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-30)


def test_conv_batch_norm_uses_darknet_epsilon_under_the_square_root():
    rng = np.random.default_rng(0)
    layer = cfg.Convolutional(
        0, 1, filters=4, size=1, stride=1, padding=0, groups=1, batch_normalize=True, activation="linear"
    )
    x = rng.standard_normal((1, 2, 2, 3)).astype(np.float32)
    kernel = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    beta, gamma, mean = (rng.standard_normal(4).astype(np.float32) for _ in range(3))
    var = np.array([1e-5, 1e-4, 1.0, 2.0], np.float32)  # small variances: the epsilon matters
    variables = {
        "params": {"kernel": kernel, "bias": beta, "scale": gamma},
        "batch_stats": {"mean": mean, "var": var},
    }
    y = np.einsum("bhwc,co->bhwo", x, kernel[0, 0])
    expected = gamma * (y - mean) / np.sqrt(var + 1e-5) + beta  # AlexeyAB darknet, fuse_conv_batchnorm
    got = network.DarknetConv(layer, in_channels=3).apply(variables, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(network.DarknetConv(layer, 3, bn_epsilon=1e-6).apply(variables, x) - expected).max() > 0.1


def test_darknet_module_checks_its_input(darknet_dir):
    _, config = small_cfg(darknet_dir, "yolov4-tiny", 64)
    variables = weights.to_variables(config, weights.random_weights(config, seed=0))
    with pytest.raises(ValueError, match="expected float images"):
        network.Darknet(config).apply(variables, np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"expected \[batch, height, width, 3\]"):
        network.Darknet(config).apply(variables, np.zeros((64, 64, 3), np.float32))


# --- NMS and bag of objects --------------------------------------------------------------------------


def numpy_iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def numpy_darknet_diou(a, b):
    """AlexeyAB darknet's box_diou: IoU - (centre distance^2 / enclosing diagonal^2) ** 0.6."""
    c = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    d = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    return numpy_iou(a, b) - (d / c) ** 0.6 if c > 0 else numpy_iou(a, b)


def numpy_per_class_nms(boxes, scores, score_threshold, iou_threshold, overlap=numpy_iou):
    """Darknet's do_nms_sort, class by class; returns [(score, box index, class)] best first."""
    kept = []
    for c in range(scores.shape[1]):
        order = [i for i in np.argsort(-scores[:, c], kind="stable") if scores[i, c] > score_threshold]
        alive = list(order)
        for i in order:
            if i not in alive:
                continue
            kept.append((float(scores[i, c]), int(i), c))
            alive = [j for j in alive if j == i or overlap(boxes[i], boxes[j]) <= iou_threshold]
    return sorted(kept, key=lambda t: -t[0])


def random_boxes(rng, batch, n):
    # Clustered boxes so that many pairs overlap above the thresholds tested.
    centres = rng.uniform(0.2, 0.8, (batch, 5, 2))[:, rng.integers(0, 5, n)] + rng.normal(
        0, 0.03, (batch, n, 2)
    )
    sizes = rng.uniform(0.05, 0.25, (batch, n, 2))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)


# Thresholds traced: one compilation per overlap kind (eager NMS recompiles its loop per call).
jitted_nms = jax.jit(nms.batched_nms, static_argnames=("max_candidates", "max_detections", "overlap"))


@pytest.mark.parametrize(
    "iou_threshold, overlap", [(0.3, "iou"), (0.6, "iou"), (0.3, "darknet_diou"), (0.1, "darknet_diou")]
)
def test_nms_matches_numpy_per_class_nms(iou_threshold, overlap):
    rng = np.random.default_rng(7)
    batch, n, classes = 3, 60, 4
    boxes = random_boxes(rng, batch, n)
    scores = (rng.uniform(0, 1, (batch, n, classes)) * (rng.uniform(0, 1, (batch, n, 1)) > 0.3)).astype(
        np.float32
    )
    out = jitted_nms(
        boxes,
        scores,
        score_threshold=0.2,
        iou_threshold=iou_threshold,
        max_candidates=n * classes,
        max_detections=n * classes,
        overlap=overlap,
    )
    reference_overlap = {"iou": numpy_iou, "darknet_diou": numpy_darknet_diou}[overlap]
    kept_with_iou = 0
    for b in range(batch):
        expected = numpy_per_class_nms(boxes[b], scores[b], 0.2, iou_threshold, reference_overlap)
        kept_with_iou += len(numpy_per_class_nms(boxes[b], scores[b], 0.2, iou_threshold))
        valid = np.asarray(out.valid[b])
        assert valid.sum() == len(expected) and valid[: len(expected)].all()  # kept first, then padding
        np.testing.assert_allclose(out.scores[b][valid], [s for s, _, _ in expected], rtol=1e-6)
        np.testing.assert_array_equal(out.classes[b][valid], [c for _, _, c in expected])
        np.testing.assert_array_equal(out.boxes[b][valid], boxes[b][[i for _, i, _ in expected]])
        assert int(out.num_candidates[b]) == int((scores[b] > 0.2).sum())
        assert 0 < len(expected) < int(out.num_candidates[b])  # NMS removed some, kept some
    if overlap == "darknet_diou":  # DIoU <= IoU: it suppresses less, and here it matters
        assert int(out.valid.sum()) > kept_with_iou


def test_nms_caps_and_bag_counts_per_class():
    rng = np.random.default_rng(1)
    batch, n, classes = 4, 50, 80
    boxes = random_boxes(rng, batch, n)
    scores = (rng.uniform(0, 1, (batch, n, classes)) ** 6).astype(np.float32)  # mostly low, some high
    detections = jax.jit(
        lambda b, s, t: nms.batched_nms(
            b, s, score_threshold=t, iou_threshold=0.45, max_candidates=512, max_detections=20
        )
    )(boxes, scores, 0.1)
    for threshold in (0.1, 0.5, 0.9):
        bag = np.asarray(
            bag_of_objects.bag_of_objects(detections, num_classes=classes, score_threshold=threshold)
        )
        assert bag.shape == (batch, classes) and bag.dtype == np.int32
        for b in range(batch):
            expected = numpy_per_class_nms(boxes[b], scores[b], 0.1, 0.45)[:20]  # the 20 best kept
            np.testing.assert_array_equal(detections.classes[b], [c for _, _, c in expected])
            counts = collections.Counter(c for s, _, c in expected if s > threshold)
            np.testing.assert_array_equal(bag[b], [counts.get(c, 0) for c in range(classes)])
    assert (
        bag.sum() > 0
        and (
            np.asarray(
                bag_of_objects.bag_of_objects(detections, num_classes=classes, score_threshold=0.1)
            ).sum(1)
            == 20
        ).all()
    )


# --- conversion, detect_image, the CLI ---------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(darknet_dir, tmp_path_factory):
    """yolov4-tiny at 96x96 with calibrated random weights, converted."""
    tmp = tmp_path_factory.mktemp("converted")
    text, config = small_cfg(darknet_dir, "yolov4-tiny", 96)
    (tmp / "tiny96.cfg").write_text(text)
    shutil.copy(darknet_dir / "coco.names", tmp / "coco.names")
    images = np.random.default_rng(0).uniform(0, 1, (2, 96, 96, 3)).astype(np.float32)
    layers = weights.calibrate_batch_stats(config, weights.random_weights(config, seed=5), images)
    weights.write_weights(tmp / "tiny96.weights", config, layers)
    out = convert.convert_darknet(tmp / "tiny96.cfg", tmp / "tiny96.weights", tmp / "model")
    assert out == tmp / "model"
    return tmp, config, layers, json.loads((out / "spec.json").read_text())


def test_convert_and_load_round_trip(converted):
    tmp, config, layers, spec = converted
    model, variables, loaded_spec = convert.load_converted(tmp / "model")
    assert loaded_spec == spec
    assert (spec["input_height"], spec["input_width"]) == (96, 96)
    assert spec["class_names"][:3] == ["person", "bicycle", "car"] and len(spec["class_names"]) == 80
    assert spec["cfg_text"] == (tmp / "tiny96.cfg").read_text()
    assert spec["sources"]["weights"]["file"] == "tiny96.weights"
    assert spec["sources"]["cfg"]["sha256"] == hashlib.sha256((tmp / "tiny96.cfg").read_bytes()).hexdigest()
    assert model.config.layers == config.layers
    back = weights.from_variables(config, jax.tree.map(np.asarray, variables))
    for index in layers:
        for a, b in zip(layers[index].arrays(), back[index].arrays(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_load_converted_errors(converted, tmp_path):
    tmp = converted[0]
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        convert.load_converted(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(tmp / "model", broken)
    (broken / "params.msgpack").write_bytes((broken / "params.msgpack").read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256 differs"):
        convert.load_converted(broken)
    with pytest.raises(FileNotFoundError, match="class names file not found"):
        convert.convert_darknet(
            tmp / "tiny96.cfg", tmp / "tiny96.weights", tmp_path / "m", names_path=tmp_path / "x.names"
        )


def test_detect_image_maps_detections_to_pixels(converted):
    tmp = converted[0]
    model, variables, spec = convert.load_converted(tmp / "model")
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)  # not the input size: stretched
    result = detect.detect_image(model, variables, spec, image, conf_threshold=0.3, iou_threshold=0.45)
    assert result.boxes and result.num_candidates >= len(result.boxes)
    scores = [box.score for box in result.boxes]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.3
    for box in result.boxes:
        x0, y0, x1, y1 = box.xyxy
        assert 0 <= x0 <= x1 <= 200 and 0 <= y0 <= y1 <= 120
        assert box.class_name == spec["class_names"][box.class_id]
    counts = collections.Counter(box.class_id for box in result.boxes)
    np.testing.assert_array_equal(result.bag, [counts.get(c, 0) for c in range(80)])
    # The jitted path on the resized frame: boxes relative to the input, scaled to pixels and clipped.
    frame = cv2.resize(image, (96, 96), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    out = detect.detect(model, variables, jnp.asarray(frame[None]), conf_threshold=0.3)
    np.testing.assert_array_equal(out.bag[0], result.bag)
    xyxy = np.asarray(out.detections.boxes[0][out.detections.valid[0]]) * [200, 120, 200, 120]
    np.testing.assert_allclose(
        np.clip(xyxy, 0, [200, 120, 200, 120]), [b.xyxy for b in result.boxes], atol=1e-3
    )


def test_detect_image_matches_opencv_dnn_pipeline(converted):
    """detect_image against OpenCV end to end: blobFromImage's resize and channel swap, the same
    cfg and weights in cv2.dnn (Region rows unfiltered), then darknet's NMS in numpy."""
    tmp = converted[0]
    model, variables, spec = convert.load_converted(tmp / "model")
    model = model.clone(bn_epsilon=1e-6)  # OpenCV's (darknet's 1e-5 moves scores by ~1e-4 here)
    (tmp / "opencv.cfg").write_text(spec["cfg_text"].replace("[yolo]", "[yolo]\nthresh=0\nnms_threshold=0"))
    net = cv2.dnn.readNetFromDarknet(str(tmp / "opencv.cfg"), str(tmp / "tiny96.weights"))
    image = np.random.default_rng(11).integers(0, 256, (150, 110, 3), dtype=np.uint8)  # RGB
    net.setInput(cv2.dnn.blobFromImage(image[..., ::-1], 1 / 255, (96, 96), swapRB=True, crop=False))
    rows = np.concatenate(net.forward(net.getUnconnectedOutLayersNames()))
    xyxy = np.concatenate([rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2], axis=1)
    scores = rows[:, 5:]
    ranked = np.sort(scores.ravel())[::-1]
    threshold = float(ranked[149] + ranked[150]) / 2  # 150 candidates, no near-tie at the threshold
    expected = numpy_per_class_nms(xyxy, scores, threshold, 0.45)[:100]
    result = detect.detect_image(model, variables, spec, image, conf_threshold=threshold, iou_threshold=0.45)
    assert result.num_candidates == 150 and 10 < len(result.boxes) == len(expected)
    assert [box.class_id for box in result.boxes] == [c for _, _, c in expected]
    np.testing.assert_allclose([box.score for box in result.boxes], [s for s, _, _ in expected], atol=1e-5)
    pixels = np.clip(xyxy[[i for _, i, _ in expected]] * [110, 150, 110, 150], 0, [110, 150, 110, 150])
    np.testing.assert_allclose([box.xyxy for box in result.boxes], pixels, atol=0.01)  # 1e-4 of the image


def run_cli(*args):
    # The pytest process's persistent XLA cache (tests/conftest.py), so the CLI does not recompile.
    env = dict(
        os.environ,
        JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "",
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    return subprocess.run(
        [sys.executable, "-m", "launch.detect", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_detect_cli(converted, tmp_path):
    tmp = converted[0]
    image = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), image[..., ::-1])  # RGB -> BGR on disk
    done = run_cli(
        f"--model={tmp / 'model'}",
        f"--image={tmp_path / 'in.png'}",
        f"--output_png={tmp_path / 'out.png'}",
        "--conf_threshold=0.3",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    model, variables, spec = convert.load_converted(tmp / "model")
    expected = detect.detect_image(model, variables, spec, image, conf_threshold=0.3)
    assert [b["class_id"] for b in out["boxes"]] == [b.class_id for b in expected.boxes]
    np.testing.assert_allclose([b["xyxy"] for b in out["boxes"]], [b.xyxy for b in expected.boxes], atol=0.01)
    assert out["bag_vector"] == expected.bag.tolist()
    assert out["bag"] == {spec["class_names"][c]: int(n) for c, n in enumerate(expected.bag) if n}
    drawn = cv2.imread(str(tmp_path / "out.png"))
    assert drawn.shape == (120, 200, 3) and (drawn != image[..., ::-1]).any()

    missing = run_cli(f"--model={tmp_path / 'none'}", f"--image={tmp_path / 'in.png'}")
    assert missing.returncode != 0 and "no such model directory" in missing.stderr
    (tmp_path / "bad.png").write_bytes(b"not an image")
    unreadable = run_cli(f"--model={tmp / 'model'}", f"--image={tmp_path / 'bad.png'}")
    assert unreadable.returncode != 0 and "cannot read image" in unreadable.stderr
    assert "Traceback" not in missing.stderr + unreadable.stderr


def test_convert_weights_cli_for_darknet(converted, tmp_path):
    """launch/convert_weights.py (another module's entry point) drives convert_darknet."""
    tmp = converted[0]
    done = subprocess.run(
        [
            sys.executable, "-m", "launch.convert_weights", "--from=darknet", f"--cfg={tmp / 'tiny96.cfg'}",
            f"--weights={tmp / 'tiny96.weights'}", f"--output={tmp_path / 'out'}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == str(tmp_path / "out")
    assert (tmp_path / "out/params.msgpack").read_bytes() == (tmp / "model/params.msgpack").read_bytes()


def test_yolo_bag_detector_matches_detect_image(converted):
    """The classifier's YOLO backend: batched bags equal detect_image's, frame by frame."""
    from ppvad_jax.models.darknet import bag_detector

    tmp = converted[0]
    model, variables, spec = convert.load_converted(tmp / "model")
    backend = bag_detector.YoloBagDetector(tmp / "model", conf_threshold=0.3, batch_size=2)
    assert len(backend.classes) == 80 and backend.classes[0] == spec["class_names"][0]
    frames = np.random.default_rng(4).integers(0, 256, (3, 120, 200, 3), dtype=np.uint8)  # 3: a ragged batch
    bags = backend.bag(frames)
    assert bags.shape == (3, 80)
    for frame, bag in zip(frames, bags, strict=True):
        want = detect.detect_image(model, variables, spec, frame, conf_threshold=0.3, iou_threshold=0.45).bag
        np.testing.assert_array_equal(bag, want)
    with pytest.raises(ValueError, match="uint8 RGB"):
        backend.bag(frames.astype(np.float32))
    # A config naming missing weights says what to fetch and the convert command.
    with pytest.raises(FileNotFoundError, match=r"yolov4\.weights.*launch\.convert_weights --from=darknet"):
        bag_detector.YoloBagDetector(tmp / "no_such_model")
