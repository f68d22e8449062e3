"""ResNet-50 feature-extraction throughput: Flax vs the PyTorch reference, same weights, one run; JSON.

  python -m launch.benchmark_backbone --batch_size=8 --repeats=5

With torch importable (a test-only dependency, requirements-dev.txt) the PyTorch
reference from tests/test_resnet.py runs on the same weights; OpenCV DNN runs the
same architecture on its own random weights. What is timed and how:
``ppvad_jax/pipelines/benchmarks/backbone.py``.
"""

import json

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import backbone

_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per implementation (median reported).")
_SIZE = flags.DEFINE_integer("size", 224, "Image side.")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference when torch is importable.")


def torch_reference():
    """The PyTorch ResNet-50 of tests/test_resnet.py, or None when torch is not importable."""
    try:
        import torch  # noqa: F401, PLC0415 - optional reference

        from tests.test_resnet import torch_resnet50  # noqa: PLC0415
    except ImportError:
        return None
    return torch_resnet50()


def main(argv):
    del argv
    torch_model = torch_reference() if _TORCH.value else None
    out = backbone.run(
        batch_size=_BATCH.value, repeats=_REPEATS.value, size=_SIZE.value, torch_model=torch_model
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
