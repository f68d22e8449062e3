"""Poisson sampling on the host, padded to a few bucketed batch sizes.

Every step each of the N units (frames, or videos) joins the batch
independently with probability q, from a generator seeded by (seed, step): the
batch of any step is reproducible without replaying earlier steps, so a
resumed run draws exactly the batches it would have drawn. A private run's seed
is its secret (``run_secret``) and a stream number: the batches are part of the
mechanism, and amplification by sampling holds only while they are secret.

The realised size varies (Binomial(N, q)), and a new shape would recompile the
jitted step; batches are therefore padded up to the next multiple of a bucket
granularity with ``is_padding`` set, and padding contributes nothing. Nothing is
ever truncated: an unusually large draw just uses a larger bucket.
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PoissonBatch:
    indices: np.ndarray  # int64 [padded size]; padding rows repeat index 0
    is_padding: np.ndarray  # bool [padded size]
    num_real: int


class PoissonSampler:
    """Poisson sampling of ``num_units`` units with rate ``sampling_rate``."""

    def __init__(
        self, *, num_units: int, sampling_rate: float, seed: int | tuple[int, ...], granularity: int = 1,
        bucket: int | None = None,
    ):  # fmt: skip
        """
        Args:
          seed: an int or a sequence of ints (``RunSecret.sampler_entropy(stream)``).
          granularity: padded sizes are multiples of this (microbatch x devices).
          bucket: the padding step, rounded up to a multiple of ``granularity``;
            default half the expected batch, so a run compiles three or four
            shapes (each compile of a DP step costs seconds to minutes on a CPU;
            padding rows cost compute: choose per machine).
        """
        if not 0 < sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
        if num_units <= 0:
            raise ValueError(f"num_units must be positive, got {num_units}")
        self.num_units = num_units
        self.sampling_rate = sampling_rate
        self._entropy = tuple(int(s) for s in (seed if isinstance(seed, (tuple, list)) else (seed,)))
        expected = num_units * sampling_rate
        bucket = max(1, math.ceil(expected / 2)) if not bucket else bucket
        self.bucket = granularity * math.ceil(bucket / granularity)

    @property
    def expected_batch_size(self) -> float:
        return self.num_units * self.sampling_rate

    def padded_size(self, num_real: int) -> int:
        return max(self.bucket, self.bucket * math.ceil(num_real / self.bucket))

    def sample(self, step: int) -> PoissonBatch:
        """The batch of step ``step``."""
        rng = np.random.default_rng([*self._entropy, int(step)])
        # Binomial size then a uniform subset of that size: exactly Poisson sampling, in O(size).
        num_real = int(rng.binomial(self.num_units, self.sampling_rate))
        chosen = np.sort(rng.choice(self.num_units, size=num_real, replace=False)).astype(np.int64)
        size = self.padded_size(num_real)
        indices = np.zeros(size, np.int64)
        indices[:num_real] = chosen
        is_padding = np.arange(size) >= num_real
        return PoissonBatch(indices, is_padding, num_real)
