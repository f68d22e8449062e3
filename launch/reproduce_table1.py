"""Trains and evaluates the paper's Table 1 variants and its Figure 10 autoencoder comparison.

  python -m launch.reproduce_table1 --config=configs/classifier.py \
      --config.data.dataset_dir=/data/tfds/ucf_crime2local/default/1.0.0 \
      --config.autoencoder_workdir=runs/ae_dpadam --config.backbone.pretrained=weights/resnet50 \
      --autoencoders=no_dp=runs/ae_adam,dp_adam=runs/ae_dpadam,dp_adagrad=runs/ae_dpadagrad \
      --workdir=runs/table1

Writes ``W/table1.md`` and ``W/table1.json``: FL-AUC and VL-F1 of the seven
variants next to the paper's, with each row's epsilons; with ``--autoencoders``
also ``W/figure10_roc.png``, 2S-bag fed by each autoencoder. Every run lives in
its own folder and resumes (``ppvad_jax/pipelines/table1.py``).
"""

import json

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.pipelines import table1

_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.", required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "configs/classifier.py", "Base classifier config.")
_VARIANTS = flags.DEFINE_list("variants", list(table1.VARIANTS), "Table 1 rows to run.")
_AUTOENCODERS = flags.DEFINE_list(
    "autoencoders", [], "name=autoencoder_workdir pairs for the Figure 10 ROC comparison (2S-bag)."
)


def main(argv):
    del argv
    try:  # checked before anything is trained
        compared = table1.parse_autoencoders(_AUTOENCODERS.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    print(table1.write_table(_CONFIG.value, _WORKDIR.value, _VARIANTS.value))
    if compared:
        aucs = table1.figure10(_CONFIG.value, _WORKDIR.value, compared)
        print(json.dumps({"figure10_fl_auc": aucs}, indent=2))


if __name__ == "__main__":
    app.run(main)
