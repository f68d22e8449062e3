"""Writes an UNTRAINED autoencoder export, for serving throughput tests only; prints its path.

  python -m launch.export_random_autoencoder --out_dir=runs/ae_random --height=240 --width=320

The load test (launch.load_test) measures the decoder, flow and scorer whatever the weights;
on a machine where no autoencoder has been trained (a lent GPU) this gives it the paper's shapes
in milliseconds. Its reconstructions are noise: the export's spec.json says so, and nothing
else in the project should be pointed at it.
"""

import json
import pathlib

from absl import app, flags

from ppvad_jax.models import autoencoder, autoencoder_io

_OUT = flags.DEFINE_string("out_dir", None, "Where to write the export.", required=True)
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height (a multiple of 8).")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width (a multiple of 8).")
_SEED = flags.DEFINE_integer("seed", 0, "Initialisation seed.")


def main(argv):
    del argv
    for name, side in (("height", _HEIGHT.value), ("width", _WIDTH.value)):
        if side <= 0 or side % autoencoder.DOWNSAMPLE:
            raise app.UsageError(f"--{name}={side} must be a positive multiple of {autoencoder.DOWNSAMPLE}")
    params = autoencoder_io.random_params(height=_HEIGHT.value, width=_WIDTH.value, seed=_SEED.value)
    untrained = {"untrained": "random initialisation for throughput tests: reconstructions are noise"}
    out = autoencoder_io.export(_OUT.value, params, height=_HEIGHT.value, width=_WIDTH.value, extra=untrained)
    spec = json.loads((pathlib.Path(out) / "spec.json").read_text())
    print(json.dumps({"export": str(out), "untrained": True, "frame_shape": spec["frame_shape"]}))


if __name__ == "__main__":
    app.run(main)
