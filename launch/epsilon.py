"""Epsilon of DP-SGD-style training, or the noise multiplier for a target epsilon.

  python -m launch.epsilon --noise_multiplier=1.3 --sampling_rate=0.0025 --steps=6000 --delta=1e-5
  python -m launch.epsilon --target_epsilon=1 --sampling_rate=0.1 --steps=512 --delta=1e-6

Prints one JSON object: ``epsilon_rdp``, ``rdp_order``, ``epsilon_pld`` and the
parameters; with ``--target_epsilon`` also the calibrated ``noise_multiplier``.
The mechanism is Poisson sampling with rate q and the Gaussian mechanism
composed ``steps`` times (``ppvad_jax/privacy/accounting.py``).
"""

import json
import sys

from absl import app, flags

from ppvad_jax.privacy import accounting

_SIGMA = flags.DEFINE_float("noise_multiplier", None, "Noise std / clipping norm.")
_TARGET = flags.DEFINE_float("target_epsilon", None, "Calibrate the noise multiplier to this epsilon.")
_Q = flags.DEFINE_float("sampling_rate", None, "Poisson sampling rate q = expected batch / N.", required=True)
_STEPS = flags.DEFINE_integer("steps", None, "Number of noisy steps.", required=True)
_DELTA = flags.DEFINE_float("delta", 1e-5, "Target delta.")
_ACCOUNTANT = flags.DEFINE_enum("accountant", "pld", ["pld", "rdp"], "Accountant used to calibrate.")
_UNIT = flags.DEFINE_enum("unit", "frame", ["frame", "video"], "What one sampled unit is.")


def main(argv):
    del argv
    if (_SIGMA.value is None) == (_TARGET.value is None):
        sys.exit("error: give exactly one of --noise_multiplier and --target_epsilon")
    try:
        sigma = _SIGMA.value
        calibrated = None
        if sigma is None:
            sigma = calibrated = accounting.calibrate_noise_multiplier(
                target_epsilon=_TARGET.value,
                sampling_rate=_Q.value,
                steps=_STEPS.value,
                delta=_DELTA.value,
                accountant=_ACCOUNTANT.value,
            )
        params = accounting.DpParams(sigma, _Q.value, _STEPS.value, _DELTA.value)
        out = accounting.report(params, unit=_UNIT.value)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if calibrated is not None:
        out.update(target_epsilon=_TARGET.value, calibrated_with=_ACCOUNTANT.value)
    print(json.dumps(accounting.json_safe(out)))


if __name__ == "__main__":
    app.run(main)
