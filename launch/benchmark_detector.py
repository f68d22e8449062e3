"""Benchmark of the darknet detector: Flax (jitted) against OpenCV DNN; prints one JSON object.

  python -m launch.benchmark_detector [--cfg=yolov4-tiny|yolov4] [--height=416] [--width=416] \
      [--batch_size=1] [--repeats=10] [--darknet_dir=DIR]

Both run the same network with the same seeded random weights (written as a darknet
.weights file by ``ppvad_jax.models.darknet.weights``) on the same random input, in one
process, so the ratio is meaningful on a shared machine:
- ``flax_fps``: ``Darknet.apply`` under jit (network, yolo activations, box decoding);
- ``flax_detect_fps``: the whole jitted ``detect`` (the above, then NMS and bag of objects);
- ``opencv_fps``: ``cv2.dnn`` ``forward`` of the yolo outputs (network and its Region layer's
  decoding; its NMS switched off with ``nms_threshold=0``, as in the Flax network timing).
Frames/s are batch_size / median seconds per call over ``--repeats`` calls after one warm-up,
the three timed in turns; ``load_average_1min`` says how busy the machine was.
"""

import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

import cv2
import jax
import numpy as np
from absl import app, flags

from ppvad_jax.models.darknet import cfg, detect, network, weights

_CFG = flags.DEFINE_enum("cfg", "yolov4-tiny", ["yolov4-tiny", "yolov4"], "Network.")
_HEIGHT = flags.DEFINE_integer("height", 416, "Input height (a multiple of 32).")
_WIDTH = flags.DEFINE_integer("width", 416, "Input width (a multiple of 32).")
_BATCH = flags.DEFINE_integer("batch_size", 1, "Frames per call.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls after the warm-up.")
_DARKNET_DIR = flags.DEFINE_string(
    "darknet_dir", None, "Folder with the cfgs; default shared/data/darknet in the repo or /work/shared."
)

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def darknet_dir() -> pathlib.Path:
    if _DARKNET_DIR.value:
        return pathlib.Path(_DARKNET_DIR.value)
    for candidate in (_ROOT / "tests/data/darknet", _ROOT / "shared/data/darknet"):
        if candidate.is_dir():
            return candidate
    raise app.UsageError("no shared/data/darknet found; pass --darknet_dir")


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleaved_median_seconds(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, timed in turns (a, b, c, a, b, c, ...) after one
    warm-up each, so that on a shared machine a burst of load hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up (compilation, OpenCV's first-call setup)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv):
    del argv
    height, width, batch = _HEIGHT.value, _WIDTH.value, _BATCH.value
    text = cfg.with_input_size((darknet_dir() / f"{_CFG.value}.cfg").read_text(), height=height, width=width)
    config = cfg.parse_cfg(text, f"{_CFG.value}.cfg")
    layers = weights.random_weights(config, seed=0)
    images = np.random.default_rng(1).uniform(0, 1, (batch, height, width, 3)).astype(np.float32)
    out = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "cfg": _CFG.value,
        "height": height,
        "width": width,
        "batch_size": batch,
        "repeats": _REPEATS.value,
        "jax_device": str(jax.devices()[0]),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
    }

    model = network.Darknet(config)
    variables = jax.device_put(weights.to_variables(config, layers))
    frames = jax.device_put(images)
    apply_fn = jax.jit(model.apply)
    start = time.perf_counter()
    jax.block_until_ready(apply_fn(variables, frames))
    out["flax_compile_s"] = round(time.perf_counter() - start, 2)

    with tempfile.TemporaryDirectory() as tmp:
        weights.write_weights(pathlib.Path(tmp) / "net.weights", config, layers)
        (pathlib.Path(tmp) / "net.cfg").write_text(text.replace("[yolo]", "[yolo]\nnms_threshold=0"))
        net = cv2.dnn.readNetFromDarknet(
            str(pathlib.Path(tmp) / "net.cfg"), str(pathlib.Path(tmp) / "net.weights")
        )
    blob = np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # NCHW, already RGB in [0, 1]
    names = net.getUnconnectedOutLayersNames()

    def opencv_forward():
        net.setInput(blob)
        return net.forward(names)

    seconds = interleaved_median_seconds(
        {
            "flax": lambda: jax.block_until_ready(apply_fn(variables, frames)),
            "flax_detect": lambda: jax.block_until_ready(detect.detect(model, variables, frames)),
            "opencv": opencv_forward,
        },
        _REPEATS.value,
    )
    out.update({f"{name}_fps": round(batch / t, 2) for name, t in seconds.items()})
    out["flax_over_opencv"] = round(out["flax_fps"] / out["opencv_fps"], 3)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
