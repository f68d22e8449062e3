"""Fault test: kill -9 the server mid-stream, restart it, check what survived; prints JSON.

  python -m launch.fault_test --cameras=2 --fps=10 --before_kill_s=10 --downtime_s=3 --after_s=10

Real processes throughout (``launch.serve``, one ``launch.camera`` per camera); exits 1 unless
every check passed. What is checked and reported: ``ppvad_jax/pipelines/loopback/fault_test.py``.
``--scorer_midpoint=-1`` (the default) makes the placeholder scorer call every frame anomalous,
so alerts exist to be lost; the real scorer's alerts depend on the video.
"""

import json
import sys

from absl import app, flags

from ppvad_jax.pipelines.loopback import cameras, fault_test

_CAMERAS = flags.DEFINE_integer("cameras", 2, "Cameras (one process each).")
_FPS = flags.DEFINE_float("fps", 10.0, "Frames per second per camera.")
_BEFORE = flags.DEFINE_float("before_kill_s", 10.0, "Streaming time before the kill.")
_DOWN = flags.DEFINE_float("downtime_s", 3.0, "Time the server stays down.")
_AFTER = flags.DEFINE_float("after_s", 10.0, "Streaming time after the restart (source length).")
_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export.")
_VIDEOS = flags.DEFINE_string("videos", "runs/demo/world/*/*.avi", "Glob of source videos (looped).")
_MIDPOINT = flags.DEFINE_float("scorer_midpoint", -1.0, "Placeholder scorer midpoint (-1: all anomalous).")
_SERVER_FLAGS = flags.DEFINE_multi_string("server_flag", [], "Extra launch.serve flags.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where everything goes (default: a temp dir).")


def main(argv):
    del argv
    settings = fault_test.FaultTestSettings(
        cameras=_CAMERAS.value,
        fps=_FPS.value,
        before_kill_s=_BEFORE.value,
        downtime_s=_DOWN.value,
        after_s=_AFTER.value,
        ae_export=_EXPORT.value,
        videos=_VIDEOS.value,
        scorer_midpoint=_MIDPOINT.value,
        server_flags=tuple(_SERVER_FLAGS.value),
        workdir=_WORKDIR.value,
    )
    try:
        report = fault_test.run(settings)
    except cameras.NoVideoError as e:
        raise app.UsageError(str(e)) from e
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    app.run(main)
