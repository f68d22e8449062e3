"""The main job on the embedded default (run it through ``bash launch/demo.sh``).

  python -m launch.demo --config=configs/demo.py --config.workdir=runs/demo [--config.num_videos=45] \
      [--config.seconds=4] [--config.cameras=4] [--config.seed=0]

Every setting is a field of ``configs/demo.py``; the stages, what each writes and
how a rerun resumes: ``ppvad_jax/pipelines/demo``. It ends with
``WORKDIR/report.md`` and ``WORKDIR/summary.json``.
"""

import sys

from absl import app
from ml_collections import config_flags

from ppvad_jax.data import errors
from ppvad_jax.pipelines.demo import run

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/demo.py", "Demo config file (configs/demo.py).", lock_config=True
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; settings are --config.NAME=VALUE")
    try:
        report = run.run(_CONFIG.value)
    except errors.DataError as e:
        sys.exit(f"error: {e}")
    print(f"\nreport: {report}")


if __name__ == "__main__":
    app.run(main)
