"""Benchmark: the camera's encoder alone and with face redaction, ms per frame; prints JSON.

  python -m launch.benchmark_camera --ae_export=runs/demo/autoencoder_dpadam/export [--repeats=20]

What each entry means: ``ppvad_jax/pipelines/benchmarks/camera.py``.
"""

import json
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a camera encodes on its CPU

from absl import app, flags  # noqa: E402

from ppvad_jax.pipelines.benchmarks import camera  # noqa: E402

_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed rounds (3 frames each).")
_UPSCALE = flags.DEFINE_float("upscale", 2.0, "Redaction detector's upscale of the frame.")


def main(argv):
    del argv
    print(json.dumps(camera.run(_EXPORT.value, repeats=_REPEATS.value, upscale=_UPSCALE.value), indent=2))


if __name__ == "__main__":
    app.run(main)
