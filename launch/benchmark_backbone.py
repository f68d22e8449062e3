"""ResNet-50 feature-extraction throughput: Flax vs the PyTorch reference, same weights, one run; JSON.

  python -m launch.benchmark_backbone --batch_size=8 --repeats=5

Times the pooled 2048-d features at 224x224 (frozen BN, float32): the jitted Flax model
after one warm-up call (compilation reported separately), median of --repeats. With
torch importable (a test-only dependency, requirements-dev.txt), the PyTorch reference
from tests/test_resnet.py runs on the same weights (converted in memory with
``resnet_weights.torchvision_to_flax``) and input, in inference mode, NCHW (its default
layout), flush-denormal on (as XLA), and the speed ratio is reported; without torch the
Flax model runs on a random init. OpenCV DNN is skipped: loading the net into cv2.dnn
needs an ONNX export, and torch.onnx.export needs the ``onnx`` (or ``onnxscript``)
package, which is not a dependency.
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
        "opencv_dnn": "skipped: cv2.dnn needs an ONNX file and torch.onnx.export needs the onnx package",
    }
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
