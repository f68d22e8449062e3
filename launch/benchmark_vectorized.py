"""K sweep points in one vmapped program against one by one, in one run; prints JSON.

  python -m launch.benchmark_vectorized --ks=1,4,8,16 [--batch_size=8 --height=120 --width=160 --steps=3]

What is timed and how: ``ppvad_jax/pipelines/benchmarks/vectorized_sweep.py``.
"""

import json

from absl import app, flags

from configs import autoencoder as ae_config
from ppvad_jax.pipelines.benchmarks import vectorized_sweep

_KS = flags.DEFINE_list("ks", ["1", "4", "8", "16"], "Numbers of points run together.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Units per step and point (the runlocal expected batch).")
_HEIGHT = flags.DEFINE_integer("height", 120, "Frame height (runlocal).")
_WIDTH = flags.DEFINE_integer("width", 160, "Frame width (runlocal).")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps per point after the compiling one.")


def main(argv):
    del argv
    config = ae_config.get_config("optimizer=dpadam,runlocal=True")
    out = vectorized_sweep.run(
        config, [int(k) for k in _KS.value], batch=_BATCH.value, height=_HEIGHT.value, width=_WIDTH.value,
        steps=_STEPS.value,
    )  # fmt: skip
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
