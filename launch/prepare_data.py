"""Builds a TFDS dataset (array_record, no TensorFlow) from raw videos.

  python -m launch.prepare_data --dataset=ucf_crime2local --manual_dir=DIR --data_dir=OUT \
      [--config=configs/ucf_crime2local.py:runlocal] [--config.num_workers=4] [--overwrite]

Prints a summary (videos and frames per label per split, skipped files and
why) and writes it as JSON next to the dataset.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.data import errors, prepare

_DATASET = flags.DEFINE_enum("dataset", "ucf_crime2local", ["ucf_crime2local"], "Dataset to build.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Raw videos + UCFCrime2Local readme.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to write into.", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild even if the dataset exists.")
_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/ucf_crime2local.py", "Data config file.", lock_config=True
)


def main(argv):
    del argv
    prepare.quiet_tfds()
    config = _CONFIG.value
    try:
        summary = prepare.prepare(
            manual_dir=_MANUAL_DIR.value,
            data_dir=_DATA_DIR.value,
            config=config,
            num_workers=config.num_workers,
            overwrite=_OVERWRITE.value,
        )
    except errors.DataError as e:
        sys.exit(f"error: {e}")
    print(prepare.format_summary(summary))


if __name__ == "__main__":
    app.run(main)
