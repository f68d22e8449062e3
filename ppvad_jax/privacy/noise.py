"""The Gaussian mechanism on a clipped gradient sum, added once per step.

Under ``jit`` over a device mesh the clipped sum is already reduced across
devices and the key is replicated, so every device draws the same noise and the
update carries exactly one draw: noise is added once per step, not once per
device (tested on 8 devices).
"""

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any  # a pytree of arrays, e.g. a gradient shaped like the params


def add_gaussian_noise(
    grad_sum: PyTree, rng_noise: jax.Array, *, noise_multiplier: float | jax.Array, l2_clip_norm: float
) -> PyTree:
    """``grad_sum + N(0, (noise_multiplier * l2_clip_norm)^2 I)``, in float32, leaf by leaf."""
    leaves, treedef = jax.tree.flatten(grad_sum)
    keys = jax.random.split(rng_noise, len(leaves))
    std = noise_multiplier * l2_clip_norm
    noisy = [
        leaf.astype(jnp.float32) + std * jax.random.normal(key, leaf.shape, jnp.float32)
        for leaf, key in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, noisy)


def privatize(
    grad_sum: PyTree,
    rng_noise: jax.Array,
    *,
    noise_multiplier: float | jax.Array,
    l2_clip_norm: float,
    expected_batch_size: float,
) -> PyTree:
    """The DP gradient estimate: noisy clipped sum divided by the EXPECTED batch size.

    Dividing by the expected size (q * N), not the realised one, keeps the
    sensitivity fixed: the realised size of a Poisson batch is itself private.
    """
    noisy = add_gaussian_noise(
        grad_sum, rng_noise, noise_multiplier=noise_multiplier, l2_clip_norm=l2_clip_norm
    )
    return jax.tree.map(lambda g: g / expected_batch_size, noisy)
