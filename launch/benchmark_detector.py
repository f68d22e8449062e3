"""Benchmark of the darknet detector: Flax (jitted) against OpenCV DNN; prints one JSON object.

  python -m launch.benchmark_detector [--cfg=yolov4-tiny|yolov4] [--height=416] [--width=416] \
      [--batch_size=1] [--repeats=10] [--darknet_dir=DIR]

The same network and seeded random weights in both, timed in turns in one process;
what each number means: ``ppvad_jax/pipelines/benchmarks/detector.py``.
"""

import json
import pathlib

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import detector

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


def main(argv):
    del argv
    out = detector.run(
        cfg_text=(darknet_dir() / f"{_CFG.value}.cfg").read_text(),
        cfg_name=_CFG.value,
        height=_HEIGHT.value,
        width=_WIDTH.value,
        batch_size=_BATCH.value,
        repeats=_REPEATS.value,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
