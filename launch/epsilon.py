"""Epsilon of DP-SGD-style training, or the noise multiplier for a target epsilon.

  python -m launch.epsilon --noise_multiplier=1.3 --num_units=60000 --expected_batch_size=150 \
      --steps=6000 --delta=1e-5
  python -m launch.epsilon --noise_multiplier=1 --num_units=3000 --expected_batch_size=96 \
      --records_per_unit=2 --selection_factor=2 --steps=1240      # the classifier, mining on
  python -m launch.epsilon --target_epsilon=1 --sampling_rate=0.1 --steps=512 --delta=1e-6

With ``--num_units`` and ``--expected_batch_size`` the mechanism is the trainers' own
``privacy.plan.DpPlan`` (same validation, same sensitivity rules); with ``--sampling_rate``
it is the bare Poisson-subsampled Gaussian. Prints one JSON object: ``epsilon_rdp``,
``rdp_order``, ``epsilon_pld`` and the parameters; with ``--target_epsilon`` also the
calibrated ``noise_multiplier``.
"""

import json
import sys

from absl import app, flags

from ppvad_jax.privacy import accounting
from ppvad_jax.privacy import plan as dp_plan

_SIGMA = flags.DEFINE_float("noise_multiplier", None, "Noise std / clipping norm.")
_TARGET = flags.DEFINE_float("target_epsilon", None, "Calibrate the noise multiplier to this epsilon.")
_Q = flags.DEFINE_float("sampling_rate", None, "Poisson rate q of a bare mechanism (no --num_units).")
_N = flags.DEFINE_integer("num_units", None, "Training units N (with --expected_batch_size).")
_E = flags.DEFINE_float("expected_batch_size", None, "Expected units per step (q = E / N).")
_RECORDS = flags.DEFINE_integer("records_per_unit", 1, "Records one unit sits in (classifier: 2).")
_SELECTION = flags.DEFINE_integer("selection_factor", 1, "2 with top-K hard-sample mining.")
_STEPS = flags.DEFINE_integer("steps", None, "Number of noisy steps.", required=True)
_DELTA = flags.DEFINE_float("delta", 1e-5, "Target delta.")
_ACCOUNTANT = flags.DEFINE_enum("accountant", "pld", ["pld", "rdp"], "Accountant used to calibrate.")
_UNIT = flags.DEFINE_enum("unit", "frame", ["frame", "video"], "What one unit of privacy is.")


def _plan(sigma):
    return dp_plan.DpPlan(
        num_units=_N.value, expected_batch_size=_E.value, noise_multiplier=sigma, l2_clip_norm=1.0,
        delta=_DELTA.value, unit=_UNIT.value, records_per_unit=_RECORDS.value,
        selection_factor=_SELECTION.value,
    )  # fmt: skip


def _report(sigma):
    if _N.value is None:
        return accounting.report(
            accounting.DpParams(sigma, _Q.value, _STEPS.value, _DELTA.value), unit=_UNIT.value
        )
    out = _plan(sigma).report(steps_run=_STEPS.value, planned_steps=_STEPS.value)
    for key in ("l2_clip_norm", "sensitivity", "randomness", "insecure_fixed_seed", "accounted_steps_reason"):
        out.pop(key)  # properties of a run, not of these numbers
    return out


def _calibrate():
    """The configured sigma for the target: the accounted one times the sensitivity factor."""
    rate, factor = _Q.value, 1
    if _N.value is not None:
        probe = _plan(1.0)
        rate, factor = probe.dp_params(_STEPS.value).sampling_rate, probe.sensitivity_factor
    accounted = accounting.calibrate_noise_multiplier(
        target_epsilon=_TARGET.value, sampling_rate=rate, steps=_STEPS.value, delta=_DELTA.value,
        accountant=_ACCOUNTANT.value,
    )  # fmt: skip
    return accounted * factor


def main(argv):
    del argv
    if (_SIGMA.value is None) == (_TARGET.value is None):
        sys.exit("error: give exactly one of --noise_multiplier and --target_epsilon")
    if (_Q.value is None) == (_N.value is None) or (_N.value is None) != (_E.value is None):
        sys.exit("error: give either --sampling_rate, or --num_units with --expected_batch_size")
    try:
        sigma = _SIGMA.value if _TARGET.value is None else _calibrate()
        out = _report(sigma)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if _TARGET.value is not None:
        out.update(target_epsilon=_TARGET.value, calibrated_with=_ACCOUNTANT.value, noise_multiplier=sigma)
    print(json.dumps(accounting.json_safe(out)))


if __name__ == "__main__":
    app.run(main)
