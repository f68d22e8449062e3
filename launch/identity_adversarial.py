"""Identity-adversarial fine-tuning of an exported autoencoder on public data only.

  python -m launch.identity_adversarial --ae_workdir=runs/demo/autoencoder_dpadam \
      --out=runs/demo/autoencoder_dpadam_idadv [--steps=600 --weight=1.0]

Writes OUT/export and OUT/metrics.json (the source's epsilon, unchanged: post-processing on
public data; the adversary's accuracy before and after). Measure what it buys with
``python -m launch.frame_privacy --ae_workdir=OUT``. What it does:
``ppvad_jax/training/identity_adversarial.py``.
"""

import json
import sys

from absl import app, flags

from ppvad_jax.training import identity_adversarial

_SOURCE = flags.DEFINE_string("ae_workdir", None, "Source autoencoder workdir (with export/).", required=True)
_OUT = flags.DEFINE_string("out", None, "Where the fine-tuned workdir goes.", required=True)
_STEPS = flags.DEFINE_integer("steps", 600, "Fine-tuning steps.")
_WEIGHT = flags.DEFINE_float("weight", 1.0, "Weight of the adversary's confusion in the loss.")
_RESTART = flags.DEFINE_integer("restart_every", 100, "Steps between fresh adversaries.")
_ADV_STEPS = flags.DEFINE_integer("adversary_steps", 1, "Adversary updates per autoencoder update.")
_ERASE = flags.DEFINE_float("erase_weight", 0.0, "Weight of the erasure term (face box -> its mean colour).")
_TINT = flags.DEFINE_bool("tint", False, "Colour the grey LFW faces with random skin tones.")
_LR = flags.DEFINE_float("learning_rate", 3e-4, "Autoencoder learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Public batches and adversary seed.")


def main(argv):
    del argv
    try:
        metrics = identity_adversarial.finetune(
            _SOURCE.value, _OUT.value, steps=_STEPS.value, weight=_WEIGHT.value,
            restart_every=_RESTART.value, adversary_steps=_ADV_STEPS.value, learning_rate=_LR.value,
            erase_weight=_ERASE.value, tint=_TINT.value, seed=_SEED.value,
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    app.run(main)
