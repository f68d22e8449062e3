"""Trains the two-stream anomaly classifier (phase 1: head; phase 2: everything) and predicts the test split.

  python -m launch.train_classifier --config=configs/classifier.py:variant=2s_bag,runlocal=True \
      --config.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 \
      --config.autoencoder_workdir=runs/demo/ae --workdir=runs/cls

Rerunning with the same workdir resumes (cached inputs and features, per-phase
checkpoints). Then ``python -m launch.evaluate --workdir=...`` scores it.
"""

import json

import jax
from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.training import classifier

_WORKDIR = flags.DEFINE_string("workdir", None, "Where caches, checkpoints and outputs go.", required=True)
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False, "Call jax.distributed.initialize() first.")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/classifier.py", "Config file.", lock_config=True)


def main(argv):
    del argv
    if _DISTRIBUTED.value:
        jax.distributed.initialize()
    metrics = classifier.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    keys = (
        "variant", "optimizer", "train_frames", "steps", "accounted_steps", "epsilon_rdp", "epsilon_pld",
        "delta", "unit_of_privacy", "randomness", "combined_privacy",
    )  # fmt: skip
    print(json.dumps({k: metrics.get(k) for k in keys}, indent=2))


if __name__ == "__main__":
    app.run(main)
