"""The TF.js graph interpreter and the COCO CenterNet bag, against TensorFlow.js running the same files.

The reference is ``tools/tfjs_reference.mjs`` (TF.js 4.22, pure-JS CPU backend) on the very
input tensors given to the JAX port. Those tests skip, saying so, where Node.js or the npm
packages (``npm ci --prefix tools``) are missing; the file-format and error tests always run.
"""

import json
import pathlib
import shutil
import subprocess

import cv2
import jax
import numpy as np
import pytest
import skimage.data

from configs import classifier as classifier_config
from ppvad_jax.data.synthetic import render, scenarios, world
from ppvad_jax.models import bag_backends
from ppvad_jax.models.centernet import bag_detector, decode, graph, tfjs_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
TFJS = ROOT / "tools" / "node_modules" / "@tensorflow" / "tfjs-converter"
MODEL_JSON = bag_detector.default_model_dir() / bag_detector.MODEL_FILE
INSTALL = "run `npm ci --prefix tools` from the repository root (needs Node.js and npm)"

needs_tfjs = pytest.mark.skipif(
    NODE is None or not TFJS.is_dir(),
    reason=f"no TensorFlow.js reference: node is {'missing' if NODE is None else 'here'}, "
    f"{TFJS} {'present' if TFJS.is_dir() else 'missing'}; {INSTALL}",
)
needs_model = pytest.mark.skipif(
    not MODEL_JSON.is_file(), reason=f"no {MODEL_JSON} (npm package {bag_detector.PACKAGE}); {INSTALL}"
)


def tfjs_outputs(model_json, inputs, outputs, tmp_path):
    """TF.js's outputs [run][output] for each input array (all of one shape)."""
    paths = []
    for i, x in enumerate(inputs):
        paths.append(tmp_path / f"input_{i}.f32")
        np.ascontiguousarray(x, "<f4").tofile(paths[-1])
    out = tmp_path / "tfjs"
    command = [
        NODE,
        str(ROOT / "tools" / "tfjs_reference.mjs"),
        f"--model={model_json}",
        f"--input={','.join(map(str, paths))}",
        f"--shape={','.join(map(str, inputs[0].shape))}",
        f"--outputs={','.join(outputs)}",
        f"--out={out}",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    summary = json.loads((out / "outputs.json").read_text())
    return [
        [np.fromfile(out / o["file"], "<f4").reshape(o["shape"]) for o in run["outputs"]]
        for run in summary["runs"]
    ]


# --- A small graph written here: every op the interpreter implements ---------------------------


def _attr_list(values, kind="i"):
    return {"list": {kind: [str(v) if kind == "i" else v for v in values]}}


def _s(text):
    import base64

    return {"s": base64.b64encode(text.encode()).decode()}


class GraphWriter:
    """Writes a TF.js graph model (model.json + one shard) node by node."""

    def __init__(self):
        self.nodes, self.specs, self.chunks = [], [], []

    def placeholder(self, name, shape):
        dims = {"dim": [{"size": str(d)} for d in shape]}
        self.nodes.append(
            {
                "name": name,
                "op": "Placeholder",
                "attr": {"shape": {"shape": dims}, "dtype": {"type": "DT_FLOAT"}},
            }
        )
        return name

    def const(self, name, value, quantize=None):
        value = np.asarray(value)
        dtype = {"f": "float32", "i": "int32"}[value.dtype.kind]
        spec = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quantize == "float16":
            self.chunks.append(value.astype("<f2").tobytes())
            spec["quantization"] = {"dtype": "float16", "original_dtype": dtype}
        elif quantize in ("uint8", "uint16"):
            levels = 255 if quantize == "uint8" else 65535
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / levels
            q = np.rint((value - lo) / scale).astype(quantize)
            self.chunks.append(q.astype("<" + q.dtype.str[1:]).tobytes())
            spec["quantization"] = {"dtype": quantize, "scale": scale, "min": lo, "original_dtype": dtype}
        else:
            self.chunks.append(value.astype("<f4" if dtype == "float32" else "<i4").tobytes())
        self.specs.append(spec)
        tf_type = "DT_FLOAT" if dtype == "float32" else "DT_INT32"
        self.nodes.append({"name": name, "op": "Const", "attr": {"dtype": {"type": tf_type}}})
        return name

    def op(self, name, op, inputs, **attr):
        self.nodes.append(
            {"name": name, "op": op, "input": list(inputs), "attr": {"T": {"type": "DT_FLOAT"}, **attr}}
        )
        return name

    def write(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "weights.bin").write_bytes(b"".join(self.chunks))
        model = {
            "format": "graph-model",
            "generatedBy": "tests/test_centernet.py",
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
            "weightsManifest": [{"paths": ["weights.bin"], "weights": self.specs}],
        }
        (directory / "model.json").write_text(json.dumps(model))
        return directory / "model.json"


def _conv_attr(strides=(1, 1), padding="SAME", dilations=(1, 1), fused=None, num_args=None):
    attr = {
        "strides": _attr_list([1, *strides, 1]),
        "dilations": _attr_list([1, *dilations, 1]),
        "padding": _s(padding),
        "data_format": _s("NHWC"),
    }
    if fused:
        attr["fused_ops"] = {"list": {"s": [_s(f)["s"] for f in fused]}}
        attr["num_args"] = {"i": str(num_args)}
    return attr


def small_graph(directory):
    """Every op of ``graph.OPS``, float32 / float16 / uint8 / uint16 weights; outputs listed."""
    rng = np.random.default_rng(0)
    g = GraphWriter()

    def w(name, shape, quantize=None):
        return g.const(name, rng.normal(0, 0.5, shape).astype(np.float32), quantize)

    x = g.placeholder("x", [1, 9, 11, 3])
    c1 = g.op("c1", "_FusedConv2D", [x, w("w1", (3, 3, 3, 4), "uint8"), w("b1", (4,), "float16")],
              **_conv_attr((2, 2), fused=["BiasAdd", "Relu6"], num_args=1))  # fmt: skip
    prelu = g.op("prelu", "_FusedConv2D", [x, w("w1b", (2, 3, 3, 4)), w("b1b", (4,)), w("alpha", (4,))],
                 **_conv_attr(padding="VALID", fused=["BiasAdd", "Prelu"], num_args=2))  # fmt: skip
    d1 = g.op("d1", "FusedDepthwiseConv2dNative", [c1, w("dw1", (3, 3, 4, 2), "uint16"), w("db1", (8,))],
              **_conv_attr(fused=["BiasAdd", "Relu"], num_args=1))  # fmt: skip
    d2 = g.op("d2", "DepthwiseConv2dNative", [c1, w("dw2", (3, 3, 4, 1))], **_conv_attr((2, 2)))
    c2 = g.op("c2", "Conv2D", [d1, w("w2", (1, 1, 8, 4))], **_conv_attr(padding="VALID"))
    c3 = g.op("c3", "Conv2D", [c1, w("w3", (2, 2, 4, 4), "float16")], **_conv_attr(dilations=(2, 2)))
    explicit_attr = _conv_attr((2, 1), padding="EXPLICIT")
    explicit = g.op("explicit", "Conv2D", [x, w("w4", (3, 2, 3, 2))], **explicit_attr)
    g.nodes[-1]["attr"]["explicit_paddings"] = _attr_list([0, 0, 1, 2, 2, 0, 0, 0])
    e = g.op("add", "Add", [c2, c3])
    e = g.op("addv2", "AddV2", [e, g.const("three", np.float32(3.0), "float16")])
    e = g.op("sub", "Sub", [e, c3])
    e = g.op("mul", "Mul", [e, c2])
    e = g.op("div", "RealDiv", [e, g.const("two_and_a_half", np.float32(2.5))])
    e = g.op("max", "Maximum", [e, c2])
    e = g.op("min", "Minimum", [e, c3])
    e = g.op("bias", "BiasAdd", [e, w("bias4", (4,))], data_format=_s("NHWC"))
    relu = g.op("relu", "Relu", [e])
    relu6 = g.op("relu6", "Relu6", [g.op("x4", "Mul", [e, g.const("four", np.float32(4.0))])])
    sigmoid = g.op("sigmoid", "Sigmoid", [e])
    tanh = g.op("tanh", "Tanh", [e])
    axes = g.const("axes", np.array([1, 2], np.int32))
    mean = g.op("mean", "Mean", [tanh, axes], keep_dims={"b": True}, Tidx={"type": "DT_INT32"})
    scaled = g.op("scaled", "Mul", [relu6, mean])
    pool_attr = {
        "ksize": _attr_list([1, 3, 3, 1]),
        "strides": _attr_list([1, 2, 2, 1]),
        "padding": _s("SAME"),
        "data_format": _s("NHWC"),
    }
    maxpool = g.op("maxpool", "MaxPool", [scaled], **pool_attr)
    avgpool = g.op("avgpool", "AvgPool", [sigmoid], **pool_attr)
    up, down = g.const("up", np.array([7, 5], np.int32)), g.const("down", np.array([3, 4], np.int32))
    resized = []
    for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
        for k, (align, half) in enumerate([(False, False), (False, True), (True, False)]):
            flags = {"align_corners": {"b": align}, "half_pixel_centers": {"b": half}}
            resized.append(g.op(f"{op}_up{k}", op, [maxpool if k % 2 else avgpool, up], **flags))
            resized.append(g.op(f"{op}_down{k}", op, [relu, down], **flags))
    ups = [r for r in resized if "_up" in r]
    cat = g.op("cat", "ConcatV2", [*ups, g.const("axis", np.int32(3))], N={"i": str(len(ups))})
    padded = g.op("pad", "Pad", [cat, g.const("pads", np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32))])
    flat = g.op("flat", "Reshape", [padded, g.const("shape", np.array([1, -1], np.int32))])
    out = g.op("out", "Identity", [flat])
    outputs = [out, prelu, d2, explicit, *[r for r in resized if "_down" in r]]
    return g.write(directory), outputs


def test_weights_are_dequantized_as_the_manifest_says():
    values = np.array([0, 1, 2, 255], np.uint8)
    uint8 = {"dtype": "uint8", "scale": 0.5, "min": -1}
    uint16 = {"dtype": "uint16", "scale": 2.0, "min": 1}
    manifest = [{"paths": [], "weights": [
        {"name": "a", "shape": [4], "dtype": "float32", "quantization": uint8},
        {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "c", "shape": [1], "dtype": "int32"},
        {"name": "d", "shape": [2], "dtype": "float32", "quantization": uint16},
    ]}]  # fmt: skip
    data = values.tobytes() + np.array([1.5, -2], "<f2").tobytes() + np.array([7], "<i4").tobytes()
    data += np.array([3, 65535], "<u2").tobytes()
    got = tfjs_model.read_weights(manifest, data, where="test")
    np.testing.assert_array_equal(got["a"], [-1, -0.5, 0, 126.5])
    np.testing.assert_array_equal(got["b"], [1.5, -2])
    assert got["c"].dtype == np.int32 and got["c"][0] == 7
    np.testing.assert_array_equal(got["d"], [7, 131071])
    with pytest.raises(tfjs_model.TfjsModelError, match="shards hold"):
        tfjs_model.read_weights(manifest, data + b"\0\0", where="test")
    with pytest.raises(tfjs_model.TfjsModelError, match="runs past the end"):
        tfjs_model.read_weights(manifest, data[:-1], where="test")


def test_an_unknown_op_is_refused_naming_it(tmp_path):
    g = GraphWriter()
    g.op("soft", "Softmax", [g.placeholder("x", [1, 4])])
    model = tfjs_model.load(g.write(tmp_path))
    with pytest.raises(graph.UnsupportedGraphError, match=r"Softmax \(node soft\)"):
        graph.GraphFunction(model, ["soft"])


@needs_tfjs
def test_every_op_matches_tfjs_on_a_small_graph(tmp_path):
    model_json, outputs = small_graph(tmp_path / "small")
    x = np.random.default_rng(1).normal(0, 1, (1, 9, 11, 3)).astype(np.float32)
    (reference,) = tfjs_outputs(model_json, [x], outputs, tmp_path)
    fn = graph.GraphFunction(tfjs_model.load(model_json), outputs)
    ours = jax.jit(fn.apply)(fn.params, x)
    for name, a, b in zip(outputs, ours, reference, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5, err_msg=name)


# --- The CenterNet of @vladmandic/human ------------------------------------------------------------


def synthetic_frames():
    """Three 240x320 frames of a synthetic Assault video (rendered as ``world.generate_video``
    does) and, per frame, the number of people standing inside it."""
    rng = np.random.default_rng([0, 1])
    background, layout = render.background(rng)
    scene = scenarios.build_scene(rng, "Assault", 60, layout, crowd=3, difficulty=0.5)
    frames = list(world.render_frames(scene, background, layout, rng, 0.5))
    picks = (10, 30, 50)
    inside = [sum(bool(a.visible[t]) and 0 <= a.x[t] < render.WIDTH for a in scene.actors) for t in picks]
    return np.stack([frames[t] for t in picks]), inside


@pytest.fixture(scope="module")
def detector():
    if not MODEL_JSON.is_file():
        pytest.skip(f"no {MODEL_JSON} (npm package {bag_detector.PACKAGE}); {INSTALL}")
    return bag_detector.CenterNetBagDetector()


@pytest.mark.slow  # 18 s: TF.js's pure-JS backend runs the 512x512 network three times
@needs_tfjs
@needs_model
def test_centernet_raw_outputs_and_peaks_match_tfjs(detector, tmp_path):
    frames = [skimage.data.astronaut(), skimage.data.coffee(), synthetic_frames()[0][1]]
    images = [detector.preprocess(f[None]) for f in frames]  # [1, 512, 512, 3] each
    names = [*bag_detector.OUTPUTS, "tower_0/detections"]
    reference = tfjs_outputs(MODEL_JSON, images, names, tmp_path)
    heatmaps, distances = jax.jit(detector.graph.apply)(detector.params, np.concatenate(images))
    peaks = decode.peak_detections(heatmaps, distances)
    for i, (heatmap_ref, distances_ref, detections_ref) in enumerate(reference):
        # Measured (BUILD_NOTES.md): heatmap within 4e-7 absolute, distances (pixels, up to ~300)
        # within 5e-3; both far inside these bounds, float32 summation order being the difference.
        np.testing.assert_allclose(heatmaps[i : i + 1], heatmap_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(distances[i : i + 1], distances_ref, rtol=1e-4, atol=2e-2)
        # Our decode against the graph's own (steps 1-2): every peak above 0.1, same class and box.
        ours = np.concatenate(
            [
                np.asarray(peaks.boxes[i]),
                np.asarray(peaks.scores[i])[:, None],
                np.asarray(peaks.classes[i])[:, None],
            ],
            1,
        )
        theirs = detections_ref[0]
        strong = theirs[theirs[:, 4] > 0.1]
        assert len(strong) == int(np.sum(ours[:, 4] > 0.1)) > 0
        for row in strong:
            match = np.abs(ours - row).max(axis=1)
            assert match.min() < 2e-2, f"image {i}: graph peak {row} not among ours"


def rescaled_copy(model_json, directory, height, width):
    """A copy of the CenterNet files whose input is [1, height, width, 3] and whose three upsampling
    size constants are rewritten to match (each old size times height / 512, width / 512): what
    TF.js needs to run the same weights at another size, written without our interpreter."""
    directory.mkdir(parents=True)
    model = json.loads(pathlib.Path(model_json).read_text())
    (placeholder,) = [n for n in model["modelTopology"]["node"] if n["op"] == "Placeholder"]
    old_h, old_w = (int(d["size"]) for d in placeholder["attr"]["shape"]["shape"]["dim"][1:3])
    placeholder["attr"]["shape"]["shape"]["dim"][1:3] = [{"size": str(height)}, {"size": str(width)}]
    (group,) = model["weightsManifest"]
    data = bytearray(b"".join((pathlib.Path(model_json).parent / p).read_bytes() for p in group["paths"]))
    offset, rewritten = 0, 0
    for spec in group["weights"]:
        itemsize = {"uint8": 1, "uint16": 2, "float16": 2}.get(spec.get("quantization", {}).get("dtype"), 4)
        size = itemsize * int(np.prod(spec["shape"]))
        if "up_sampling2d" in spec["name"] and spec["dtype"] == "int32":
            assert "quantization" not in spec, spec
            old = np.frombuffer(bytes(data[offset : offset + size]), "<i4")
            new = np.array([old[0] * height // old_h, old[1] * width // old_w], "<i4")
            data[offset : offset + size] = new.tobytes()
            rewritten += 1
        offset += size
    assert rewritten == 3 and offset == len(data)
    group["paths"] = ["rescaled.bin"]
    (directory / "rescaled.bin").write_bytes(bytes(data))
    (directory / "centernet.json").write_text(json.dumps(model))
    return directory / "centernet.json"


@pytest.mark.slow  # 10 s: TF.js runs the network twice at 256x320
@needs_tfjs
@needs_model
def test_a_smaller_input_matches_tfjs_on_rewritten_constants(tmp_path):
    small = bag_detector.CenterNetBagDetector(input_size=(320, 256))
    assert small.size == (320, 256)
    frames = synthetic_frames()[0]
    shrunk = np.stack([cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA) for f in frames[:2]])
    images = small.preprocess(shrunk)
    assert images.shape == (2, 256, 320, 3)
    model_json = rescaled_copy(MODEL_JSON, tmp_path / "model", 256, 320)
    reference = tfjs_outputs(model_json, list(images[:, None]), bag_detector.OUTPUTS, tmp_path)
    apply = jax.jit(lambda p, x: small.graph.apply(p, x, resize_scales=small._resize_scales))
    heatmaps, distances = apply(small.params, images)
    assert heatmaps.shape == (2, 64, 80, 80)
    for i, (heatmap_ref, distances_ref) in enumerate(reference):
        np.testing.assert_allclose(heatmaps[i : i + 1], heatmap_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(distances[i : i + 1], distances_ref, rtol=1e-4, atol=2e-2)


def test_depthwise_taps_equal_a_grouped_convolution():
    """The shifted-product depthwise convolution against XLA's grouped convolution."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 11, 13, 4)).astype(np.float32)
    for kernel, multiplier, strides, padding, dilations in [
        (3, 1, (1, 1), "SAME", (1, 1)),
        (5, 1, (2, 2), "SAME", (1, 1)),
        (3, 3, (2, 1), "VALID", (1, 1)),
        (3, 2, (1, 1), "SAME", (2, 2)),
        (3, 1, (2, 2), [(1, 2), (0, 1)], (1, 2)),
    ]:
        w = rng.normal(size=(kernel, kernel, 4, multiplier)).astype(np.float32)
        expected = jax.lax.conv_general_dilated(
            x,
            w.reshape(kernel, kernel, 1, 4 * multiplier),
            window_strides=strides,
            padding=padding,
            rhs_dilation=dilations,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=4,
            precision="highest",
        )
        got = graph._depthwise_taps(x, w, strides, padding, dilations)
        np.testing.assert_allclose(
            got, expected, rtol=1e-5, atol=1e-5, err_msg=str((kernel, strides, padding))
        )


def test_an_input_size_off_the_stride_is_refused():
    with pytest.raises(ValueError, match="multiples of 32"):
        bag_detector._checked_size((300, 256))


@needs_model
def test_the_bag_counts_the_astronaut_and_synthetic_people(detector):
    person = bag_detector.COCO_CLASSES.index("person")
    bag = detector.bag(skimage.data.astronaut()[None])
    assert bag.shape == (1, 80) and bag[0, person] == 1
    boxes = detector.detect(skimage.data.astronaut())
    assert [b.class_name for b in boxes] == ["person"] and boxes[0].xyxy[3] > 400  # head to feet
    frames, inside = synthetic_frames()
    assert min(inside) >= 2
    bags = detector.bag(frames)
    assert np.all(bags[:, person] >= 1) and np.all(bags[:, person] <= np.array(inside) + 1)


@needs_model
def test_a_short_batch_is_padded_to_its_bucket_and_counts_the_same():
    """A server tick of 1-3 frames pays for a power of two, not for batch_size; same counts."""
    small = bag_detector.CenterNetBagDetector(input_size=(160, 128), batch_size=4)
    assert small.buckets() == [1, 2, 4]
    frames, _ = synthetic_frames()
    astronaut = cv2.resize(skimage.data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    frames = np.concatenate([frames, astronaut[None], astronaut[None, :, ::-1]])  # 5 frames
    together = small.bag(frames)  # chunks of 4 and 1
    alone = np.concatenate([small.bag(frames[i : i + 1]) for i in range(len(frames))])
    np.testing.assert_array_equal(together, alone)
    small.bag(frames[:3])
    assert small._run._cache_size() == 2  # buckets 4 and 1 (from 5 = 4 + 1), 4 again for 3
    small.bag(frames[:2])
    assert small._run._cache_size() == 3


@needs_model
def test_boxes_come_back_in_the_frame_pixels_either_way(detector):
    """The astronaut on a wider canvas: letterboxed (padded below) or stretched, the person's box
    is found where it is in the canvas, not where it sits in the network's input."""
    image = skimage.data.astronaut()
    (square,) = detector.detect(image)
    canvas = np.zeros((512, 800, 3), np.uint8)
    canvas[:, 100:612] = image
    expected = np.array(square.xyxy) + [100, 0, 100, 0]
    assert detector.resize == "letterbox"
    others = (
        bag_detector.CenterNetBagDetector(resize="stretch"),
        bag_detector.CenterNetBagDetector(input_size=(320, 256)),
    )
    for other in (detector, *others):
        people = [b for b in other.detect(canvas) if b.class_name == "person"]
        assert people, other.resize
        assert np.abs(np.array(people[0].xyxy) - expected).max() < 40, (
            other.resize,
            people[0].xyxy,
            expected,
        )


@needs_model
def test_bag_backend_by_name_and_config(detector):
    made = bag_backends.make("centernet_coco", model_dir="", conf_threshold=0.3)
    assert made.classes == bag_detector.COCO_CLASSES and made.conf_threshold == 0.3
    config = classifier_config.get_config("runlocal=True,detector=centernet_coco")
    assert (config.detector.backend, config.detector.model_dir) == ("centernet_coco", "")


def test_the_class_list_is_coco_and_documented():
    darknet = (ROOT / "tests" / "data" / "darknet" / "coco.names").read_text().split("\n")
    assert len(bag_detector.COCO_CLASSES) == 80 == len([n for n in darknet if n])
    doc = " ".join(bag_detector.__doc__.split())
    assert ", ".join(bag_detector.COCO_CLASSES) in doc


def test_a_missing_model_names_the_package_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        bag_backends.make("centernet_coco", model_dir=tmp_path / "nothing")
    message = str(error.value)
    assert "@vladmandic/human" in message and "npm ci --prefix tools" in message
    assert classifier_config.get_config().detector.backend == "yolo"  # the default is unchanged
