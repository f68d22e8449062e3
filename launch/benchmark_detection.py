"""Benchmark: the demo's classifier against motion energy over world seeds x head seeds; prints JSON.

  python -m launch.benchmark_detection --workdir=runs/detection_seeds [--world_seeds=0,1,2] \
      [--head_seeds=0,1,2] [--redactions=none,fill@0.8] [--config.num_videos=90 ...]

``--config`` is the demo's (``configs/demo.py``); what each entry means:
``ppvad_jax/pipelines/benchmarks/detection_seeds.py``. Each world reruns the demo's data
stages and autoencoder (minutes each on a 2-core CPU); reruns reuse what is already there.
"""

import json
import pathlib

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.data import prepare
from ppvad_jax.pipelines.benchmarks import detection_seeds
from ppvad_jax.privacy import accounting

_WORKDIR = flags.DEFINE_string("workdir", "runs/detection_seeds", "Where every world and run goes.")
_WORLDS = flags.DEFINE_list("world_seeds", ["0", "1", "2"], "Synthetic world seeds.")
_HEADS = flags.DEFINE_list("head_seeds", ["0", "1", "2"], "Classifier seeds per world.")
_REDACTIONS = flags.DEFINE_list(
    "redactions", ["none"], "Camera face redactions to run (none, fill@0.8, ...): each against none."
)
_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/demo.py", "The demo's config.", lock_config=False
)


def main(argv):
    del argv
    prepare.quiet_tfds()
    out = detection_seeds.run(
        _CONFIG.value, workdir=pathlib.Path(_WORKDIR.value),
        world_seeds=[int(s) for s in _WORLDS.value], head_seeds=[int(s) for s in _HEADS.value],
        redactions=["" if r == "none" else r for r in _REDACTIONS.value],
    )  # fmt: skip
    text = json.dumps(accounting.json_safe(out), indent=2)
    (pathlib.Path(_WORKDIR.value) / "detection_seeds.json").write_text(text)
    print(text)


if __name__ == "__main__":
    app.run(main)
