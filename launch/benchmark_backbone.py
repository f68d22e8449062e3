"""Backbone feature-extraction throughput, one run, JSON. Two modes:

  python -m launch.benchmark_backbone --batch_size=8 --repeats=5
  python -m launch.benchmark_backbone --compare=resnet50,mobilenet_v2 --sizes=112,224 --batch_size=8

The first: ResNet-50, Flax vs the PyTorch reference (same weights; with torch importable, a
test-only dependency, requirements-dev.txt) and OpenCV DNN (same architecture, its own random
weights). The second (``--compare``): the classifier's backbones against each other at each
of ``--sizes``, timed in turns. What is timed and how: ``ppvad_jax/pipelines/benchmarks/backbone.py``.
"""

import json

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import backbone

_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per implementation (median reported).")
_SIZE = flags.DEFINE_integer("size", 224, "Image side.")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference when torch is importable.")
_COMPARE = flags.DEFINE_list(
    "compare", [], "Backbones (resnet50, mobilenet_v2) to time against each other at --sizes instead."
)
_SIZES = flags.DEFINE_list("sizes", ["112", "224"], "Image sides for --compare.")


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
    if _COMPARE.value:
        out = backbone.compare_backbones(
            batch_size=_BATCH.value, repeats=_REPEATS.value, sizes=[int(s) for s in _SIZES.value],
            names=tuple(_COMPARE.value),
        )  # fmt: skip
    else:
        torch_model = torch_reference() if _TORCH.value else None
        out = backbone.run(
            batch_size=_BATCH.value, repeats=_REPEATS.value, size=_SIZE.value, torch_model=torch_model
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
