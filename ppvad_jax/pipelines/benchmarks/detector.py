"""The darknet detector, Flax (jitted) against OpenCV DNN, the same network and weights, one run.

Both run the network of a darknet cfg with the same seeded random weights
(written as a darknet .weights file by ``models.darknet.weights``) on the same
random input, in one process, so the ratio is meaningful on a shared machine:
- ``flax_fps``: ``Darknet.apply`` under jit (network, yolo activations, box decoding);
- ``flax_detect_fps``: the whole jitted ``detect`` (the above, then NMS and bag of objects);
- ``opencv_fps``: ``cv2.dnn`` ``forward`` of the yolo outputs (network and its Region layer's
  decoding; its NMS switched off with ``nms_threshold=0``, as in the Flax network timing).
Frames/s are batch_size / median seconds per call over ``repeats`` calls after one warm-up,
the three timed in turns; ``load_average_1min`` says how busy the machine was.
"""

import os
import pathlib
import platform
import tempfile
import time

import cv2
import jax
import numpy as np

from ppvad_jax.models.darknet import cfg, detect, network, weights
from ppvad_jax.pipelines.benchmarks import timing


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _opencv_forward(text, config, layers, images):
    """cv2.dnn's forward of the same network and weights, NMS off: a function of no arguments."""
    with tempfile.TemporaryDirectory() as tmp:
        weights.write_weights(pathlib.Path(tmp) / "net.weights", config, layers)
        (pathlib.Path(tmp) / "net.cfg").write_text(text.replace("[yolo]", "[yolo]\nnms_threshold=0"))
        net = cv2.dnn.readNetFromDarknet(
            str(pathlib.Path(tmp) / "net.cfg"), str(pathlib.Path(tmp) / "net.weights")
        )
    blob = np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # NCHW, already RGB in [0, 1]
    names = net.getUnconnectedOutLayersNames()

    def forward():
        net.setInput(blob)
        return net.forward(names)

    return forward


def run(*, cfg_text, cfg_name, height, width, batch_size, repeats):
    """The benchmark's JSON object for the cfg ``cfg_text`` (named ``cfg_name``) at height x width."""
    text = cfg.with_input_size(cfg_text, height=height, width=width)
    config = cfg.parse_cfg(text, f"{cfg_name}.cfg")
    layers = weights.random_weights(config, seed=0)
    images = np.random.default_rng(1).uniform(0, 1, (batch_size, height, width, 3)).astype(np.float32)
    out = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "cfg": cfg_name,
        "height": height,
        "width": width,
        "batch_size": batch_size,
        "repeats": repeats,
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
    seconds = timing.interleaved_median_seconds(
        {
            "flax": lambda: jax.block_until_ready(apply_fn(variables, frames)),
            "flax_detect": lambda: jax.block_until_ready(detect.detect(model, variables, frames)),
            "opencv": _opencv_forward(text, config, layers, images),
        },
        repeats,
    )
    out.update({f"{name}_fps": round(batch_size / t, 2) for name, t in seconds.items()})
    out["flax_over_opencv"] = round(out["flax_fps"] / out["opencv_fps"], 3)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out
