"""Benchmark of the sigmoidal anomaly score implementations, in one run; prints JSON.

  python -m launch.benchmark_sas [--videos=128] [--frames=10000] [--repeats=5] [--python_videos=0]

Python loop, a numpy frame loop, and the compiled ``sequential`` and
``associative`` methods on the same random confidences; what each entry means:
``ppvad_jax/pipelines/benchmarks/sas.py``.
"""

import json

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import sas

_VIDEOS = flags.DEFINE_integer("videos", 128, "Videos per batch.")
_FRAMES = flags.DEFINE_integer("frames", 10_000, "Frames per video.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per compiled method (median).")
_PYTHON_VIDEOS = flags.DEFINE_integer("python_videos", 0, "Videos for the Python loop; 0: all.")


def main(argv):
    del argv
    out = sas.run(
        videos=_VIDEOS.value, frames=_FRAMES.value, repeats=_REPEATS.value, python_videos=_PYTHON_VIDEOS.value
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
