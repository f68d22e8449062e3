"""The Flax darknet network against OpenCV's darknet importer (cv2.dnn), on the same files.

Each test writes a cfg and a random-weights .weights file with this project's writer, loads
both into OpenCV and into the Flax model, feeds the same images and compares:
- every layer's output (the layer zoo), or the convolutions feeding the yolo layers;
- the yolo outputs: OpenCV's Region layer rows ``[cx, cy, w, h, objectness,
  objectness * class probabilities]`` (relative to the input; cells in (row, col, anchor)
  order) against the decoded Flax outputs. The cfg copy given to OpenCV sets ``thresh=0``
  (OpenCV zeroes class scores under 0.2 by default) and ``nms_threshold=0`` (no NMS inside
  the layer), so the rows are the full, unfiltered decoding.
BN epsilon is set to OpenCV's 1e-6 in the Flax model here (darknet's own is 1e-5, the default).
Weights are calibrated (``weights.calibrate_batch_stats``) so activations stay of order 1.
"""

import pathlib

import cv2
import jax
import numpy as np
import pytest

from ppvad_jax.models.darknet import cfg, network, shapes, weights

ROOT = pathlib.Path(__file__).resolve().parents[1]
DARKNET_CANDIDATES = (ROOT / "tests/data/darknet", ROOT / "shared/data/darknet")
# Max abs difference / max(1, max abs value of the reference). Float32 rounding adds up layer
# after layer (each convolution sums thousands of products in its own order): YOLOv4's head
# convolutions (layers 138, 149, 160; 256x256) differ from a float64 run of the same Flax
# model by 1.7e-4..3.2e-4, and OpenCV's by 1.0e-4..2.1e-4; hence 1e-3 for YOLOv4 and 1e-4 for
# the shallow networks. A semantic difference (padding, epsilon, a channel order) is O(1e-2) or more.
TOLERANCE = 1e-4
TOLERANCE_YOLOV4 = 1e-3

# Every layer kind and option YOLOv4 uses, in a network small enough to compare layer by layer,
# plus the cases the big cfgs do not reach: a maxpool on an odd size (padding after the input
# matters), size 2 stride 1, a grouped convolution, shortcut with an activation, swish,
# logistic, a route of an absolute and a negative index, yolo with a mask of anchors 3..5.
ZOO_CFG = """
[net]
height=40
width=40
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=mish

[route]
layers=-1
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=swish

[shortcut]
from=-3
activation=leaky

[maxpool]
size=3
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=logistic

[maxpool]
size=2
stride=2

[maxpool]
size=5
stride=1

[route]
layers=8,-1

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask=3,4,5
anchors=4,5, 8,9, 12,10, 16,20, 30,24, 40,38
classes=3
num=6
scale_x_y=1.1

[route]
layers=-4

[upsample]
stride=2

[convolutional]
batch_normalize=1
groups=2
filters=16
size=3
stride=2
pad=1
activation=leaky

[route]
layers=-1,10

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask=0,1,2
anchors=4,5, 8,9, 12,10, 16,20, 30,24, 40,38
classes=3
num=6
"""


@pytest.fixture(scope="module")
def darknet_dir():
    for candidate in DARKNET_CANDIDATES:
        if (candidate / "yolov4.cfg").is_file():
            return candidate
    pytest.fail(f"darknet cfgs not found in any of {[str(c) for c in DARKNET_CANDIDATES]}")


def relative_error(ours, reference):
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape
    assert np.isfinite(reference).all() and np.isfinite(ours).all()
    return np.abs(ours - reference).max() / max(1.0, np.abs(reference).max())


class Pair:
    """The same cfg text and random weights in OpenCV and in Flax."""

    def __init__(self, text, tmp_path, *, seed, calibration_images, head_gain=1.0):
        self.config = cfg.parse_cfg(text, "test.cfg")
        layers = weights.random_weights(self.config, seed=seed, head_gain=head_gain)
        layers = weights.calibrate_batch_stats(self.config, layers, calibration_images)
        weights.write_weights(tmp_path / "test.weights", self.config, layers)
        _, read_back = weights.read_weights(tmp_path / "test.weights", self.config)
        (tmp_path / "opencv.cfg").write_text(text.replace("[yolo]", "[yolo]\nthresh=0\nnms_threshold=0"))
        self.net = cv2.dnn.readNetFromDarknet(str(tmp_path / "opencv.cfg"), str(tmp_path / "test.weights"))
        self.net.enableWinograd(False)  # exact direct convolution, like XLA's: see TOLERANCE
        self.model = network.Darknet(self.config, bn_epsilon=1e-6)
        self.variables = weights.to_variables(self.config, read_back)

    def opencv_name(self, layer):
        """OpenCV's name for a darknet layer's final output (its activation's: index + 1)."""
        activation = getattr(layer, "activation", "linear")
        if activation != "linear":
            return f"{activation}_{layer.index + 1}"
        names = [n for n in self.net.getLayerNames() if n.rsplit("_", 1)[1] == str(layer.index)]
        return [n for n in names if n.rsplit("_", 1)[0] not in cfg.ACTIVATIONS][-1]

    def run(self, images, indices):
        """OpenCV's and Flax's outputs of the layers ``indices`` (OpenCV's yolo layers: rows)."""
        self.net.setInput(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # NCHW, RGB in [0, 1]
        names = [self.opencv_name(self.config.layers[i]) for i in indices]
        opencv = dict(zip(indices, self.net.forward(names), strict=True))
        flax = jax.jit(lambda v, x: self.model.apply(v, x, capture=tuple(indices)))(self.variables, images)
        return opencv, flax


def yolo_rows(flax_outputs):
    """The decoded Flax outputs as OpenCV Region rows, [batch, boxes, 5 + classes]."""
    decoded = jax.tree.map(np.asarray, flax_outputs.decoded)
    scores = decoded.objectness[..., None] * decoded.class_probs
    return np.concatenate([decoded.boxes, decoded.objectness[..., None], scores], axis=-1)


def compare_yolo(pair, opencv, flax_outputs, batch, tolerance=TOLERANCE):
    """Region rows of every yolo layer, OpenCV vs Flax, column group by column group."""
    yolo_indices = [layer.index for layer in pair.config.yolo_layers]
    reference = np.concatenate(
        [opencv[i].reshape(batch, -1, opencv[i].shape[-1]) for i in yolo_indices], axis=1
    )
    ours = yolo_rows(flax_outputs)
    errors = {
        "centre": relative_error(ours[..., :2], reference[..., :2]),
        # w = exp(tw) * anchor / input: compare log sizes, i.e. the raw tw, th.
        "log_size": relative_error(np.log(ours[..., 2:4]), np.log(reference[..., 2:4])),
        "objectness": relative_error(ours[..., 4], reference[..., 4]),
        "scores": relative_error(ours[..., 5:], reference[..., 5:]),
    }
    assert max(errors.values()) < tolerance, errors
    # The comparison is not vacuous: objectness and scores spread over (0, 1), boxes move.
    assert (
        reference[..., 4].std() > 0.05 and reference[..., 5:].max() > 0.5 and reference[..., 2].std() > 0.01
    )
    return errors


def test_layer_zoo_matches_opencv_layer_by_layer(tmp_path):
    config = cfg.parse_cfg(ZOO_CFG)
    sizes = [(s.height, s.channels) for s in shapes.infer_shapes(config)]
    assert sizes[7][0] == 5 and sizes[8][0] == 3  # the odd-size maxpool is there
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 1, (4, 40, 40, 3)).astype(np.float32)
    pair = Pair(ZOO_CFG, tmp_path, seed=1, calibration_images=calibration, head_gain=3.0)
    images = rng.uniform(0, 1, (2, 40, 40, 3)).astype(np.float32)
    indices = list(range(len(config.layers)))
    opencv, flax = pair.run(images, indices)
    for layer in config.layers:
        if isinstance(layer, cfg.Yolo):
            continue
        ours = np.asarray(flax.captured[layer.index]).transpose(0, 3, 1, 2)
        error = relative_error(ours, opencv[layer.index])
        assert error < TOLERANCE, (layer, error)
        assert np.asarray(flax.captured[layer.index]).std() > 0.05, layer  # not a constant
    compare_yolo(pair, opencv, flax, batch=2)


def compare_big(darknet_dir, tmp_path, name, size, batch, tolerance=TOLERANCE):
    text = cfg.with_input_size((darknet_dir / f"{name}.cfg").read_text(), height=size, width=size)
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 1, (2, size, size, 3)).astype(np.float32)
    pair = Pair(text, tmp_path, seed=2, calibration_images=calibration)
    images = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
    yolo_indices = [layer.index for layer in pair.config.yolo_layers]
    head_indices = [i - 1 for i in yolo_indices]  # the convolutions feeding the yolo layers
    opencv, flax = pair.run(images, head_indices + yolo_indices)
    errors = {
        i: relative_error(np.asarray(flax.captured[i]).transpose(0, 3, 1, 2), opencv[i]) for i in head_indices
    }
    assert max(errors.values()) < tolerance, errors
    compare_yolo(pair, opencv, flax, batch=batch, tolerance=tolerance)


def test_yolov4_tiny_matches_opencv(darknet_dir, tmp_path):
    compare_big(darknet_dir, tmp_path, "yolov4-tiny", size=224, batch=2)


@pytest.mark.slow
def test_yolov4_matches_opencv(darknet_dir, tmp_path):
    compare_big(darknet_dir, tmp_path, "yolov4", size=256, batch=1, tolerance=TOLERANCE_YOLOV4)
