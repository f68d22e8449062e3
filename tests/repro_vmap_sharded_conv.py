"""Minimal upstream repro: vmap(grad) conv kernel gradients are wrong on a sharded batch (XLA CPU).

  python tests/repro_vmap_sharded_conv.py          # lax.conv_general_dilated: rel diff ~1.0
  python tests/repro_vmap_sharded_conv.py tap      # models.tap_conv: rel diff ~2e-7

Per-example kernel gradients of one stride-2 convolution, for a batch of 16
split over 8 fake CPU devices, against the same jitted function on an
unsharded batch. Measured with jax/jaxlib 0.10.2: the lax version differs by
100% (relative max), the tap_conv version (same function, kernel gradient
as explicit matrix products) agrees to float rounding. Not collected by pytest
(it must set XLA_FLAGS before JAX starts); see BUILD_NOTES.md.
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from ppvad_jax.models.tap_conv import tap_conv  # noqa: E402

CONV = tap_conv if sys.argv[1:] == ["tap"] else lax.conv_general_dilated


def loss(kernel, x):  # one example
    y = CONV(x[None], kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.sin(y))


def main():
    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(16, 8, 8, 3)), jnp.float32)
    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))
    want = per_example(kernel, x)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    got = per_example(
        jax.device_put(kernel, NamedSharding(mesh, P())), jax.device_put(x, NamedSharding(mesh, P("data")))
    )
    rel = float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))
    print(f"jax {jax.__version__}, {CONV.__name__}: max relative difference sharded vs unsharded {rel:.3g}")


if __name__ == "__main__":
    main()
