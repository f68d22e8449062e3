"""Canaries in one autoencoder run, for ``privacy.audit``'s lower bound on its epsilon.

``config.audit.canaries = m`` adds m canary frames (crops of the public images, seeded by
``config.seed``: the images are public) and draws each one's coin, in the training set or not
with probability 1/2, from the run's secret (so the coins are as private as the batches and
the noise, and the same on a resume). The included canaries are ordinary training units: the
sampler, the clipping and the accountant see them like any frame, and the epsilon in
metrics.json covers them. After training each canary is scored by minus its reconstruction MSE
(a memorised canary reconstructs better) and ``privacy.audit.audit`` turns the guesses into the
epsilon the run provably exceeds with 95% confidence. Frame units only.

Cost: m more frames in the dataset (about 1.5 m included) and one evaluation pass over m frames.
"""

import numpy as np

from ppvad_jax.data import autoencoder_data, public_images
from ppvad_jax.privacy import audit

AUDIT_STREAM = 11  # the secret's sampler stream for the coins (0 is the batch sampler's)


class CanarySource:
    """A ``FrameSource`` whose records from ``first_record`` on are the canaries' frames."""

    def __init__(self, base, frames, first_record):
        self.base, self.frames, self.first = base, frames, int(first_record)
        self.frame_shape = base.frame_shape

    def fetch(self, records):
        records = np.asarray(records)
        flat = [
            self.frames[r - self.first] if r >= self.first else self.base.fetch(np.array([r]))[0]
            for r in records.ravel().tolist()
        ]
        return np.stack(flat).reshape(*records.shape, *self.frame_shape)


def add(config, splits, source, secret):
    """``(splits, source, canaries)`` with the included canaries among the training units."""
    m = int(config.audit.canaries)
    if config.dp.unit != "frame":
        raise ValueError("audit canaries are frames: set --config.dp.unit=frame to audit")
    height, width = source.frame_shape[:2]
    frames = public_images.random_crops(np.random.default_rng(config.seed), m, height, width)
    coins = np.random.default_rng(np.random.SeedSequence(secret.sampler_entropy(AUDIT_STREAM)))
    included = audit.inclusion(m, coins)
    first = 1 << 40  # above any record number of the dataset
    records = [np.array([first + j]) for j in range(m)]
    train = splits["train"]
    chosen = [records[j] for j in np.flatnonzero(included)]
    splits = dict(splits)
    splits["train"] = autoencoder_data.Units(train.records + chosen, train.names + ["canary"] * len(chosen))
    canaries = {"included": included, "units": autoencoder_data.Units(records, ["canary"] * m)}
    return splits, CanarySource(source, frames, first), canaries


def result(config, canaries, mse, *, epsilon_upper, delta):
    """The audit's JSON: the lower bound beside the accountant's upper bound, and what they cover.

    ``delta``: the run's (the accountant's) delta, so both bounds are about one guarantee.
    """
    m = len(canaries["included"])
    k = max(1, int(round(config.audit.guess_fraction * m)))
    done = audit.audit(
        -np.asarray(mse), canaries["included"], delta=delta, confidence=config.audit.confidence,
        k_plus=k, k_minus=k,
    )  # fmt: skip
    return {
        **done.as_dict(),
        "epsilon_upper_bound": epsilon_upper,
        "canaries_included": int(canaries["included"].sum()),
        "canary": "crops of the public images, one per canary; in the training set with probability 1/2",
        "score": "minus the canary's reconstruction MSE after training",
        "method": "one-run audit (Steinke, Nasr, Jagielski 2023), privacy.audit",
        "meaning": "with this confidence the run's true epsilon is at least epsilon_lower_bound",
    }
