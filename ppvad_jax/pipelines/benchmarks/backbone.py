"""ResNet-50 feature-extraction throughput: Flax vs the PyTorch reference and OpenCV DNN, one run.

Times the pooled 2048-d features at ``size`` x ``size`` (frozen BN, float32): the
jitted Flax model after one warm-up call (compilation reported separately), median
of ``repeats``. Given the PyTorch reference model (``tests/test_resnet.py``; torch
is a test-only dependency), it runs on the same weights (converted in memory with
``resnet_weights.torchvision_to_flax``) and input, in inference mode, NCHW (its
default layout), flush-denormal on (as XLA), and the speed ratio is reported;
without it the Flax model runs on a random init.

OpenCV DNN: torch.onnx.export needs the ``onnx`` package (not a dependency), so the
same architecture reaches cv2.dnn as a darknet cfg written here
(``resnet50_darknet``: torchvision's v1.5 layout as convolutional / shortcut / route
/ avgpool sections, BN folded by OpenCV) with its own random weights: a speed
comparison of the same network, not a numerical one (the numerical cross-check is
tests/test_resnet.py).

``compare_backbones``: the classifier's backbones (``models.backbones``: ResNet-50,
MobileNetV2) against each other, pooled features at several sizes, frozen BN, random
weights (speed does not depend on the values: XLA's CPU code flushes denormals), every
(backbone, size) jitted and warmed up once, then timed in turns so load hits all alike.
"""

import os
import pathlib
import platform
import tempfile
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models import backbones, resnet, resnet_weights
from ppvad_jax.pipelines.benchmarks import timing


def throughput(seconds, first, batch_size):
    return {
        "seconds_per_call": round(seconds, 4),
        "frames_per_s": round(batch_size / seconds, 2),
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


def time_opencv(images, repeats):
    """cv2.dnn forward of ``resnet50_darknet`` on the same images (NCHW blob)."""
    cfg_text, weights = resnet50_darknet(images.shape[1])
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path, weights_path = pathlib.Path(tmp) / "resnet50.cfg", pathlib.Path(tmp) / "resnet50.weights"
        cfg_path.write_text(cfg_text)
        weights_path.write_bytes(weights)
        net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
    blob = np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32)

    def call():
        net.setInput(blob)
        return net.forward()

    seconds, first = timing.first_and_median_seconds(call, repeats)
    features = call()
    return {**throughput(seconds, first, len(images)), "version": cv2.__version__,
            "threads": cv2.getNumThreads(), "output_shape": list(features.shape)}  # fmt: skip


def time_torch(torch_model, images, flax_features, repeats):
    """The PyTorch reference on the same images; its speed and its features' error against Flax's."""
    import torch  # noqa: PLC0415 - optional: only with the reference model

    # XLA's CPU code flushes denormals to zero; torch does not by default, and the random
    # reference weights drive late activations into denormals (measured: 2x slower).
    torch.set_flush_denormal(True)
    nchw = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

    def torch_call():
        with torch.inference_mode():
            return torch_model(nchw)

    torch_s, torch_first = timing.first_and_median_seconds(torch_call, repeats)
    want = torch_call()[0].numpy()
    return torch_s, {
        "torch": {**throughput(torch_s, torch_first, len(images)), "threads": torch.get_num_threads(),
                  "version": torch.__version__, "flush_denormal": True},
        "features_relative_error": float(np.max(np.abs(flax_features - want)) / np.max(np.abs(want))),
    }  # fmt: skip


def run(*, batch_size, repeats, size, torch_model=None):
    """The benchmark's JSON object; ``torch_model``: the reference (None skips torch)."""
    images = np.random.default_rng(0).normal(size=(batch_size, size, size, 3)).astype(np.float32)
    if torch_model is not None:
        state = {k: v.numpy() for k, v in torch_model.state_dict().items() if not k.startswith("fc.")}
        model, variables = resnet_weights.torchvision_to_flax(state)
    else:
        model = resnet.ResNet50(num_classes=None, norm="frozen_bn")
        variables = resnet.init_variables(model, jax.random.key(0))
    features_fn = jax.jit(lambda v, x: model.apply(v, x)["features"])
    variables, device_images = jax.device_put(variables), jax.device_put(jnp.asarray(images))
    flax_s, flax_first = timing.first_and_median_seconds(
        lambda: features_fn(variables, device_images).block_until_ready(), repeats
    )
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {jax.devices()[0].device_kind}",
        "batch_size": batch_size,
        "resolution": [size, size],
        "repeats": repeats,
        "flax": throughput(flax_s, flax_first, batch_size),
    }
    opencv = time_opencv(images, repeats)
    out["opencv_dnn"] = opencv
    out["flax_over_opencv_speed"] = round(opencv["seconds_per_call"] / flax_s, 3)
    if torch_model is None:
        out["torch"] = "skipped: torch not importable (pip install -r requirements-dev.txt)"
        return out
    flax_features = np.asarray(features_fn(variables, device_images))
    torch_s, torch_out = time_torch(torch_model, images, flax_features, repeats)
    out["torch"] = torch_out["torch"]
    out["flax_over_torch_speed"] = round(torch_s / flax_s, 3)
    out["features_relative_error"] = torch_out["features_relative_error"]
    return out


def compare_backbones(*, batch_size, repeats, sizes, names=backbones.NAMES):
    """frames/s of each backbone's pooled features at each size, in one run: the JSON object."""
    calls, first_call_s = {}, {}
    for name in names:
        model = backbones.feature_module(name, norm="frozen_bn")
        variables = jax.device_put(model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3), jnp.float32)))
        features_fn = jax.jit(lambda v, x, model=model: model.apply(v, x)["features"])
        for size in sizes:
            images = jax.device_put(
                jnp.asarray(np.random.default_rng(0).normal(size=(batch_size, size, size, 3)), jnp.float32)
            )
            call = lambda f=features_fn, v=variables, x=images: f(v, x).block_until_ready()  # noqa: E731
            start = time.perf_counter()
            call()  # compiles
            first_call_s[(name, size)] = time.perf_counter() - start
            calls[(name, size)] = call
    load_before = os.getloadavg()
    seconds = timing.interleaved_median_seconds(calls, repeats)
    results = {
        name: {
            str(size): {
                "feature_dim": backbones.feature_dim(name),
                **throughput(seconds[(name, size)], first_call_s[(name, size)], batch_size),
            }
            for size in sizes
        }
        for name in names
    }
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {jax.devices()[0].device_kind}",
        "batch_size": batch_size,
        "repeats": repeats,
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        "backbones": results,
    }
    if {"resnet50", "mobilenet_v2"} <= set(names):
        out["mobilenet_v2_over_resnet50_speed"] = {
            str(size): round(seconds[("resnet50", size)] / seconds[("mobilenet_v2", size)], 2)
            for size in sizes
        }
    return out
