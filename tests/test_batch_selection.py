import numpy as np
import pytest

from ppvad_jax.privacy import batch_selection


def test_same_step_same_batch_and_padding_rules():
    sampler = batch_selection.PoissonSampler(num_units=1000, sampling_rate=0.02, seed=3, granularity=4)
    a, b = sampler.sample(7), sampler.sample(7)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(sampler.sample(8).indices, a.indices)
    sizes = set()
    for step in range(50):
        batch = sampler.sample(step)
        size = len(batch.indices)
        sizes.add(size)
        # Divisible by the 4 devices asked for, never short, and padded by less than one bucket.
        assert size % 4 == 0 and batch.num_real <= size <= batch.num_real + sampler.bucket
        assert batch.is_padding.sum() == size - batch.num_real
        real = batch.indices[: batch.num_real]
        assert len(np.unique(real)) == batch.num_real and real.max(initial=0) < 1000
    # Expected 20 per step: a handful of padded shapes (compiles), not one per realised size.
    assert len(sizes) <= 4


def test_poisson_statistics():
    n, q, steps = 500, 0.04, 3000
    sampler = batch_selection.PoissonSampler(num_units=n, sampling_rate=q, seed=0)
    counts = np.zeros(n)
    sizes = []
    for step in range(steps):
        batch = sampler.sample(step)
        counts[batch.indices[: batch.num_real]] += 1
        sizes.append(batch.num_real)
    sizes = np.asarray(sizes)
    # Binomial(n, q) batch sizes: mean nq = 20, variance nq(1-q) = 19.2.
    assert abs(sizes.mean() - n * q) < 4 * np.sqrt(n * q * (1 - q) / steps)
    assert sizes.var() == pytest.approx(n * q * (1 - q), rel=0.1)
    # Every unit is included with probability q, independently of the others.
    assert abs(counts.mean() / steps - q) < 1e-3
    assert counts.std() / steps == pytest.approx(np.sqrt(q * (1 - q) / steps), rel=0.15)


def test_never_truncates_a_large_draw():
    sampler = batch_selection.PoissonSampler(num_units=10, sampling_rate=1.0, seed=0, bucket=3)
    batch = sampler.sample(0)
    assert batch.num_real == 10 and len(batch.indices) == 12
