"""LiRA membership inference against a trained autoencoder, with reference models; prints JSON.

  python -m launch.membership_lira --config=configs/autoencoder.py:optimizer=dpadam,runlocal=True \
      --config.data.dataset_dir=D --target_workdir=runs/ae --workdir=runs/lira [--references=8]

``--config`` is the target's own training config (the references are trained with it, each on
half of the candidates). What is measured: ``ppvad_jax/pipelines/membership_lira.py``.
"""

import json
import sys

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.pipelines import membership_lira
from ppvad_jax.privacy import accounting

_TARGET = flags.DEFINE_string("target_workdir", None, "The attacked autoencoder's workdir.", required=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the reference models and lira.json go.", required=True)
_REFS = flags.DEFINE_integer("references", 8, "Reference models (even).")
_SEED = flags.DEFINE_integer("seed", 0, "Which half each reference trains on.")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/autoencoder.py", "The target's config.")


def main(argv):
    del argv
    try:
        result = membership_lira.run(
            _CONFIG.value, target_workdir=_TARGET.value, workdir=_WORKDIR.value,
            num_references=_REFS.value, seed=_SEED.value,
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(accounting.json_safe(result), indent=2))


if __name__ == "__main__":
    app.run(main)
