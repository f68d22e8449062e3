"""Loopback load test: N simulated cameras from real video files against one server; prints JSON.

  python -m launch.load_test --cameras=2 --fps=10 --seconds=30 \
      --ae_export=runs/demo/autoencoder_dpadam/export --videos='runs/demo/world/*/*.avi'

The server is ``launch.serve`` in its own process; the cameras' frames are encoded before the
timed phase, then streamed in real time over mutual TLS. What is measured and reported:
``ppvad_jax/pipelines/loopback/load_test.py``.
"""

import json
import os

# The simulated cameras encode on the CPU, as cameras do; the server, a child process, gets the
# platforms this process was started with (on a GPU machine it must not inherit "cpu").
_SERVER_PLATFORMS = os.environ.get("JAX_PLATFORMS")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import app, flags  # noqa: E402

from ppvad_jax.pipelines.loopback import cameras, load_test  # noqa: E402

_CAMERAS = flags.DEFINE_integer("cameras", 2, "Simulated cameras.")
_FPS = flags.DEFINE_float("fps", 10.0, "Frames per second per camera.")
_SECONDS = flags.DEFINE_float("seconds", 30.0, "Length of the timed phase.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 600, "Frames per camera at most.")
_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export.")
_VIDEOS = flags.DEFINE_string("videos", "runs/demo/world/*/*.avi", "Glob of source videos (looped).")
_QUANTIZE = flags.DEFINE_enum("quantize", "float16", ["float16", "int8", "float32"], "Wire format streamed.")
_SERVER_FLAGS = flags.DEFINE_multi_string("server_flag", [], "Extra launch.serve flags, e.g. --config.x=y.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Certificates and the store go here (default: a temp dir).")


def main(argv):
    del argv
    settings = load_test.LoadTestSettings(
        cameras=_CAMERAS.value,
        fps=_FPS.value,
        seconds=_SECONDS.value,
        max_frames=_MAX_FRAMES.value,
        ae_export=_EXPORT.value,
        videos=_VIDEOS.value,
        quantize=_QUANTIZE.value,
        server_flags=tuple(_SERVER_FLAGS.value),
        workdir=_WORKDIR.value,
    )
    try:
        result = load_test.run(settings, server_platforms=_SERVER_PLATFORMS)
    except cameras.NoVideoError as e:
        raise app.UsageError(str(e)) from e
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
