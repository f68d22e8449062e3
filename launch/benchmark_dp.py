"""Step-time benchmark of the autoencoder: non-private vs DP, in one run; prints JSON.

  python -m launch.benchmark_dp --batch_size=16 --height=240 --width=320 [--dtype=float32] [--vmap]

Times the trainer's own jitted steps (Adam vs DP-Adam, every unit of the batch
real), median of --repeats after a compiling warm-up step; the variants and
their ratios: ``ppvad_jax/pipelines/benchmarks/dp_step.py``.
"""

import json

from absl import app, flags

from configs import autoencoder as ae_config
from ppvad_jax.pipelines.benchmarks import dp_step

_BATCH = flags.DEFINE_integer("batch_size", 16, "Units per step (all real).")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
_MICRO = flags.DEFINE_integer("microbatch_size", 0, "DP microbatch; 0: the whole batch.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed steps per variant.")
_VMAP = flags.DEFINE_bool("vmap", False, "Also time DP with vmap(grad) per-example gradients (slow on CPU).")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["plain_autodiff", "plain_layerwise", "dp_layerwise"],
    "Which steps to time (each compiles its own program: on a GPU, compilation dominates a short run).",
)


def main(argv):
    del argv
    names = list(_VARIANTS.value) + (["dp_vmap"] if _VMAP.value and "dp_vmap" not in _VARIANTS.value else [])
    shape = dp_step.Shape(_BATCH.value, _HEIGHT.value, _WIDTH.value, _DTYPE.value, _MICRO.value)
    try:
        dp_step.check_variants(names)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    out = dp_step.run(ae_config.get_config(), names, shape, _REPEATS.value)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
