"""One object builds a run's DP mechanism and its accounting, so the epsilon is of what ran.

A ``DpPlan`` is frozen and validated when it is built (from a config, by the trainers, the
sweep and ``launch.epsilon``). It yields:

- the sampler: Poisson sampling at its true rate ``q = E / N`` (refused when the expected
  batch E exceeds the N units, rather than silently capped);
- the clipped-gradient sum (``clipping.clipped_sum``, any ``grads_fn``) and its
  sensitivity: how far adding or removing one unit of privacy can move it;
- the noise step (``noise.privatize``): N(0, (sigma C)^2) once per step on the clipped sum;
- the ``dp_accounting`` event and the epsilon report for a number of steps.

Sensitivity. Adding one unit of privacy changes at most ``records_per_unit`` training records
(2 for the classifier: a record holds a frame and the frame 1/10 s earlier, so one raw frame
sits in up to two records), and each record can move the clipped sum by up to
``selection_factor`` x C (2 with top-K hard-sample mining: the new record can enter the K and
push another one out; 1 otherwise). The sum moves by at most ``k C`` with
``k = records_per_unit x selection_factor``, and it moves at all only when one of the unit's
records is sampled, which happens with probability ``1 - (1 - q)^records_per_unit``. By joint
convexity of the hockey-stick divergence (condition on the rest of the batch) that release is
dominated by the Poisson-subsampled Gaussian with rate ``1 - (1 - q)^r`` and noise multiplier
``sigma / k``: the event accounted for.

Stopping. Early stopping decides from validation metrics of noisy iterates how many steps
run. Epsilon of the steps that happened to run is not a guarantee for a stopping time chosen
that way (that needs a privacy odometer); epsilon of the schedule's maximum is, since the
prefix is post-processing of the full run. Reports account ``max(steps run, planned
maximum)`` steps and say so.

What jax_privacy's ``DPExecutionPlan`` does and this keeps: one object, the event from the
same numbers that ran. What this adds: sigma stays a traced argument of the step (one compile
for every noise level), and batches and noise are functions of (secret, stream, step), so a
resumed run is bit-identical.
"""

import dataclasses
import math
from collections.abc import Sequence

import dp_accounting
import jax

from ppvad_jax.privacy import accounting, batch_selection, clipping, noise, run_secret

UNITS = ("frame", "video")


@dataclasses.dataclass(frozen=True)
class DpPlan:
    """A private run's mechanism. ``noise_multiplier`` is the configured noise std / C."""

    num_units: int
    expected_batch_size: float
    noise_multiplier: float
    l2_clip_norm: float
    delta: float
    unit: str = "frame"
    records_per_unit: int = 1
    selection_factor: int = 1
    allow_large_delta: bool = False
    # What the noisy sum is divided by: the expected batch, or (hard mining) the K trained on. A
    # constant, never the realised batch size, which is private.
    divisor: float | None = None

    def __post_init__(self):
        n, e = self.num_units, self.expected_batch_size
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"num_units must be a positive int, got {n!r}")
        if not (math.isfinite(e) and 0 < e <= n):
            raise ValueError(
                f"expected batch size {e} must be in (0, {n}], the number of training {self.unit}s: "
                "lower the batch size or add data"
            )
        for name in ("noise_multiplier", "l2_clip_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if self.l2_clip_norm == 0:
            raise ValueError("l2_clip_norm must be > 0")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.records_per_unit < 1 or self.selection_factor < 1:
            raise ValueError("records_per_unit and selection_factor must be >= 1")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if self.delta >= 1 / n and not self.allow_large_delta:
            raise ValueError(
                f"delta {self.delta:g} >= 1/N = {1 / n:g}: a mechanism that publishes one random unit "
                "in full meets it; use a smaller delta (0 picks one below 1/N) or set "
                "dp.allow_large_delta=True"
            )

    # --- The mechanism -------------------------------------------------------------------------

    @property
    def sampling_rate(self) -> float:
        return self.expected_batch_size / self.num_units

    @property
    def sensitivity_factor(self) -> int:
        """k: the clipped sum moves by at most k C when one unit of privacy is added or removed."""
        return self.records_per_unit * self.selection_factor

    @property
    def sensitivity(self) -> float:
        return self.sensitivity_factor * self.l2_clip_norm

    def sampler(
        self, secret: run_secret.RunSecret, stream: int, *, granularity: int = 1, bucket: int | None = None
    ) -> batch_selection.PoissonSampler:
        """The Poisson sampler of ``stream``; each stream of a run draws independent batches."""
        return batch_selection.PoissonSampler(
            num_units=self.num_units,
            sampling_rate=self.sampling_rate,
            seed=secret.sampler_entropy(stream),
            granularity=granularity,
            bucket=bucket,
        )

    def noisy_gradient(
        self,
        grads_fn: clipping.GradsFn,
        params: clipping.PyTree,
        batch: clipping.PyTree,
        is_padding: jax.Array,
        noise_key: jax.Array,
        *,
        noise_multiplier: float | jax.Array,
        microbatch_size: int | None = None,
    ) -> tuple[clipping.PyTree, clipping.ClipResult]:
        """``(noisy mean gradient, ClipResult)``: clipped sum, one noise draw, / expected batch.

        ``noise_multiplier`` is an argument (it may be traced: one compiled step for every
        sigma of a sweep); the accountant uses ``self.noise_multiplier``, so a caller passes
        the same value (``sharded_step.jit_train_step`` does).
        """
        clipped = clipping.clipped_sum(
            grads_fn, params, batch, is_padding, l2_clip_norm=self.l2_clip_norm,
            microbatch_size=microbatch_size,
        )  # fmt: skip
        grads = noise.privatize(
            clipped.grad_sum,
            noise_key,
            noise_multiplier=noise_multiplier,
            l2_clip_norm=self.l2_clip_norm,
            expected_batch_size=self.divisor or self.expected_batch_size,
        )
        return grads, clipped

    # --- Accounting ----------------------------------------------------------------------------

    def dp_params(self, steps: int) -> accounting.DpParams:
        """The accounted Poisson-subsampled Gaussian (module docstring) over ``steps`` steps."""
        rate = 1.0 - (1.0 - self.sampling_rate) ** self.records_per_unit
        return accounting.DpParams(self.noise_multiplier / self.sensitivity_factor, rate, steps, self.delta)

    def dp_event(self, steps: int) -> dp_accounting.DpEvent:
        return accounting.dp_event(self.dp_params(steps))

    def report(self, *, steps_run: int, planned_steps: int, insecure_seed: bool = False) -> dict:
        """Epsilon and everything that says what it means, for a run of ``steps_run`` steps whose
        schedule allowed ``planned_steps`` (module docstring, "Stopping")."""
        steps = max(int(steps_run), int(planned_steps))
        params = self.dp_params(steps)
        out = accounting.report(params, unit=self.unit)
        out.update(
            private=True,
            noise_multiplier=self.noise_multiplier,
            accounted_noise_multiplier=params.noise_multiplier,
            sampling_rate=self.sampling_rate,
            accounted_sampling_rate=params.sampling_rate,
            steps=int(steps_run),
            accounted_steps=steps,
            accounted_steps_reason=(
                "the schedule's maximum: early stopping chose the steps run from noisy iterates"
                if steps > steps_run
                else "the steps run"
            ),
            l2_clip_norm=self.l2_clip_norm,
            records_per_unit=self.records_per_unit,
            selection_factor=self.selection_factor,
            sensitivity=self.sensitivity,
            expected_batch_size=self.expected_batch_size,
            train_units=self.num_units,
            protects=f"membership of one {self.unit} in the training set (add/remove adjacency)",
            randomness=(
                "INSECURE: noise and batches from the public config.seed (dp.insecure_fixed_seed); "
                "this epsilon assumes secret noise and does not hold against anyone who has the seed"
                if insecure_seed
                else "secret: 128 bits from the OS, kept only in the checkpoint directory"
            ),
            insecure_fixed_seed=bool(insecure_seed),
        )
        return out


def not_private() -> dict:
    """The report of a run that is not differentially private."""
    return {"epsilon_rdp": None, "epsilon_pld": None, "delta": None, "private": False}


# What a report must carry for its mechanism to be composed with another's.
_EVENT_KEYS = ("accounted_noise_multiplier", "accounted_sampling_rate", "accounted_steps", "delta")


def _no_combination(private, why):
    return {"private": private, "epsilon_pld": None, "epsilon_rdp": None, "why": why}


def combined(reports: Sequence[dict], names: Sequence[str]) -> dict:
    """Epsilon of several trainings released together about the same units (their composition).

    The autoencoder and the classifier train on the same frames: whoever holds both models
    holds the composition of their mechanisms. ``reports``: each run's privacy report (a
    ``report()`` dict as saved in its metrics.json); ``names``: what each is, for the text.
    Not private when any one is not; not computed (and said why) when the units differ or a
    report lacks its accounted event (metrics written before the event was recorded).
    """
    names = list(names)
    for report, name in zip(reports, names, strict=True):
        if not report or not report.get("private"):
            return _no_combination(False, f"the {name} is not differentially private")
        if any(report.get(k) is None for k in _EVENT_KEYS):
            return _no_combination(
                None, f"the {name}'s metrics do not record its accounted event: retrain it"
            )
    units = {r["unit_of_privacy"] for r in reports}
    if len(units) > 1:
        return _no_combination(
            None, f"units of privacy differ ({', '.join(sorted(units))}): no common guarantee"
        )
    delta = sum(float(r["delta"]) for r in reports)  # each run's delta is spent: they add up
    params = [
        accounting.DpParams(
            float(r["accounted_noise_multiplier"]),
            float(r["accounted_sampling_rate"]),
            int(r["accounted_steps"]),
            float(r["delta"]),
        )  # fmt: skip
        for r in reports
    ]
    out = accounting.composed(params, delta)
    out.update(private=True, unit_of_privacy=units.pop(), of=" + ".join(names),
               accountants="dp_accounting: the runs' events composed, RDP and PLD")  # fmt: skip
    return out
