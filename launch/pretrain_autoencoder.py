"""Pretrains the autoencoder on public images (no privacy cost), as the start of a DP run.

  python -m launch.pretrain_autoencoder --out=runs/ae_public --height=120 --width=160 \
      --features=64,32,16 --steps=300
  python -m launch.train_autoencoder --config=configs/autoencoder.py:optimizer=dpadam,runlocal=True \
      --config.init_from=runs/ae_public --config.data.dataset_dir=... --workdir=runs/ae

The export says it saw only scikit-image's public sample images; the DP
trainer refuses to start from one that does not. Rerunning with the same
settings reuses the export.
"""

import json

from absl import app, flags

from ppvad_jax.training import public_pretrain

_OUT = flags.DEFINE_string("out", None, "Export directory to write.", required=True)
_HEIGHT = flags.DEFINE_integer("height", 120, "Frame height (a multiple of 8).")
_WIDTH = flags.DEFINE_integer("width", 160, "Frame width (a multiple of 8).")
_FEATURES = flags.DEFINE_list("features", ["64", "32", "16"], "Encoder widths (the config's model_features).")
_STEPS = flags.DEFINE_integer("steps", 300, "Adam steps.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Crops per step.")
_LR = flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Initialisation and crop seed.")


def main(argv):
    del argv
    spec = public_pretrain.pretrain(
        _OUT.value,
        height=_HEIGHT.value,
        width=_WIDTH.value,
        features=tuple(int(f) for f in _FEATURES.value),
        steps=_STEPS.value,
        batch_size=_BATCH.value,
        learning_rate=_LR.value,
        seed=_SEED.value,
    )
    print(json.dumps({"export": _OUT.value, **spec}, indent=2))


if __name__ == "__main__":
    app.run(main)
