"""ResNet-50 feature-extraction throughput: Flax vs the PyTorch reference, same weights, one run; JSON.

  python -m launch.benchmark_backbone --batch_size=8 --repeats=5

Times the pooled 2048-d features at 224x224 (frozen BN, float32): the jitted Flax model
after one warm-up call (compilation reported separately), median of --repeats. With
torch importable (a test-only dependency, requirements-dev.txt), the PyTorch reference
from tests/test_resnet.py runs on the same weights (converted in memory with
``resnet_weights.torchvision_to_flax``) and input, in inference mode, NCHW (its default
layout), flush-denormal on (as XLA), and the speed ratio is reported; without torch the
Flax model runs on a random init.

OpenCV DNN: torch.onnx.export needs the ``onnx`` package (not a dependency), so the same
architecture reaches cv2.dnn as a darknet cfg written here (``resnet50_darknet``:
torchvision's v1.5 layout as convolutional / shortcut / route / avgpool sections, BN
folded by OpenCV) with its own random weights: a speed comparison of the same
network, not a numerical one (the numerical cross-check is tests/test_resnet.py).
"""

import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from ppvad_jax.models import resnet, resnet_weights

_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per implementation (median reported).")
_SIZE = flags.DEFINE_integer("size", 224, "Image side.")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference when torch is importable.")


def median_seconds(fn, repeats):
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def throughput(seconds, first):
    return {
        "seconds_per_call": round(seconds, 4),
        "frames_per_s": round(_BATCH.value / seconds, 2),
        "first_call_s": round(first, 2),
    }


def resnet50_darknet(size, seed=0):
    """ResNet-50 v1.5 (stride in the 3x3 conv) as a darknet cfg up to the global average pool,
    and random weights for it in darknet's binary layout: ``(cfg_text, weights_bytes)``."""
    rng = np.random.default_rng(seed)
    parts = [f"[net]\nbatch=1\nwidth={size}\nheight={size}\nchannels=3\n"]
    blobs = [np.asarray([0, 2, 0], np.int32).tobytes(), np.asarray([0], np.uint64).tobytes()]

    def conv(cin, filters, ksize, stride, activation):
        parts.append(
            f"[convolutional]\nbatch_normalize=1\nfilters={filters}\nsize={ksize}\nstride={stride}\n"
            f"pad=1\nactivation={activation}\n"
        )
        # BN beta, gamma, rolling mean, rolling variance, then OIHW weights (He-scaled).
        bn = [np.zeros(filters), np.ones(filters), np.zeros(filters), np.ones(filters)]
        w = rng.normal(0, np.sqrt(2.0 / (cin * ksize * ksize)), filters * cin * ksize * ksize)
        blobs.extend(np.asarray(a, np.float32).tobytes() for a in (*bn, w))

    conv(3, 64, 7, 2, "relu")
    parts.append("[maxpool]\nsize=3\nstride=2\n")
    cin = 64
    for stage, (blocks, width) in enumerate(zip(resnet.STAGE_SIZES, resnet.STAGE_WIDTHS, strict=True)):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            conv(cin, width, 1, 1, "relu")
            conv(width, width, 3, stride, "relu")
            conv(width, 4 * width, 1, 1, "linear")
            if block == 0:  # projection shortcut from the block's input
                parts.append("[route]\nlayers=-4\n")
                conv(cin, 4 * width, 1, stride, "linear")
                parts.append("[shortcut]\nfrom=-3\nactivation=relu\n")
            else:
                parts.append("[shortcut]\nfrom=-4\nactivation=relu\n")
            cin = 4 * width
    parts.append("[avgpool]\n")
    return "\n".join(parts), b"".join(blobs)


def time_opencv(images):
    """cv2.dnn forward of ``resnet50_darknet`` on the same images (NCHW blob)."""
    import tempfile

    import cv2

    cfg_text, weights = resnet50_darknet(images.shape[1])
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "resnet50.cfg"), "w") as f:
            f.write(cfg_text)
        with open(os.path.join(tmp, "resnet50.weights"), "wb") as f:
            f.write(weights)
        net = cv2.dnn.readNetFromDarknet(
            os.path.join(tmp, "resnet50.cfg"), os.path.join(tmp, "resnet50.weights")
        )
    blob = np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32)

    def call():
        net.setInput(blob)
        return net.forward()

    seconds, first = median_seconds(call, _REPEATS.value)
    features = call()
    return {**throughput(seconds, first), "version": cv2.__version__, "threads": cv2.getNumThreads(),
            "output_shape": list(features.shape)}  # fmt: skip


def main(argv):
    del argv
    images = (
        np.random.default_rng(0).normal(size=(_BATCH.value, _SIZE.value, _SIZE.value, 3)).astype(np.float32)
    )
    torch_model = None
    if _TORCH.value:
        try:
            import torch  # noqa: PLC0415 - optional reference

            from tests.test_resnet import torch_resnet50  # noqa: PLC0415
        except ImportError:
            torch = None
        if torch is not None:
            torch_model = torch_resnet50()
            state = {k: v.numpy() for k, v in torch_model.state_dict().items() if not k.startswith("fc.")}
            model, variables = resnet_weights.torchvision_to_flax(state)
    if torch_model is None:
        model = resnet.ResNet50(num_classes=None, norm="frozen_bn")
        variables = resnet.init_variables(model, jax.random.key(0))

    features_fn = jax.jit(lambda v, x: model.apply(v, x)["features"])
    variables, device_images = jax.device_put(variables), jax.device_put(jnp.asarray(images))
    flax_s, flax_first = median_seconds(
        lambda: features_fn(variables, device_images).block_until_ready(), _REPEATS.value
    )
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {jax.devices()[0].device_kind}",
        "batch_size": _BATCH.value,
        "resolution": [_SIZE.value, _SIZE.value],
        "repeats": _REPEATS.value,
        "flax": throughput(flax_s, flax_first),
    }
    opencv = time_opencv(images)
    out["opencv_dnn"] = opencv
    out["flax_over_opencv_speed"] = round(opencv["seconds_per_call"] / flax_s, 3)
    if torch_model is not None:
        # XLA's CPU code flushes denormals to zero; torch does not by default, and the random
        # reference weights drive late activations into denormals (measured: 2x slower).
        torch.set_flush_denormal(True)
        nchw = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

        def torch_call():
            with torch.inference_mode():
                return torch_model(nchw)

        torch_s, torch_first = median_seconds(torch_call, _REPEATS.value)
        got = np.asarray(features_fn(variables, device_images))
        want = torch_call()[0].numpy()
        out["torch"] = {**throughput(torch_s, torch_first), "threads": torch.get_num_threads(),
                        "version": torch.__version__, "flush_denormal": True}  # fmt: skip
        out["flax_over_torch_speed"] = round(torch_s / flax_s, 3)
        out["features_relative_error"] = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    else:
        out["torch"] = "skipped: torch not importable (pip install -r requirements-dev.txt)"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
