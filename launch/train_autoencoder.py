"""Trains the autoencoder (plain Adam, DP-SGD, DP-Adam or DP-Adagrad).

  python -m launch.train_autoencoder --config=configs/autoencoder.py:optimizer=dpadam,runlocal=True \
      --config.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 --workdir=runs/ae

Rerunning with the same workdir resumes from the last checkpoint. Multi-host:
add --jax_distributed on every host (jax.distributed.initialize reads the
cluster from the environment: Slurm, Open MPI, TPU pods), or name it yourself with
--jax_coordinator_address=HOST:PORT --jax_num_processes=N --jax_process_id=I; every host
shares --workdir.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.training import autoencoder, common

_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and outputs go.", required=True)
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False, "Call jax.distributed.initialize() first.")
_COORDINATOR = flags.DEFINE_string("jax_coordinator_address", None, "HOST:PORT of process 0 (else detected).")
_NUM = flags.DEFINE_integer("jax_num_processes", None, "Processes in the job (else detected).")
_ID = flags.DEFINE_integer("jax_process_id", None, "This process's index (else detected).")
_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/autoencoder.py", "Config file.", lock_config=True
)


def main(argv):
    del argv
    if _DISTRIBUTED.value:
        common.initialize_distributed(_COORDINATOR.value, _NUM.value, _ID.value)
    metrics = autoencoder.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    keys = (
        "optimizer",
        "mse",
        "psnr",
        "ssim",
        "epsilon_rdp",
        "epsilon_pld",
        "delta",
        "unit_of_privacy",
        "steps",
        "accounted_steps",
        "randomness",
        "stopped_because",
    )
    print(json.dumps({k: metrics.get(k) for k in keys}, indent=2))


if __name__ == "__main__":
    app.run(main)
