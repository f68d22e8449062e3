"""tap_conv computes lax.conv_general_dilated's function and gradients, on every path it takes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ppvad_jax.models.tap_conv import tap_conv

NHWC = ("NHWC", "HWIO", "NHWC")


def _lax(x, k, strides, padding):
    return lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=NHWC)


def _tap(x, k, strides, padding):
    return tap_conv(x, k, strides, padding, dimension_numbers=NHWC)


CASES = [
    # (H, W, Cin, Cout, kernel, stride, padding): the path each one takes is in the comment.
    (12, 16, 3, 8, (3, 3), 2, "SAME"),  # custom vjp, strided im2col kernel gradient
    (11, 9, 6, 5, (3, 3), 2, "SAME"),  # odd sizes: asymmetric SAME padding
    (12, 16, 5, 7, (2, 2), 1, ((1, 0), (0, 1))),  # a phase convolution's explicit padding
    (12, 16, 40, 3, (3, 3), 1, "SAME"),  # few output channels: shifted-output product
    (10, 10, 8, 4, (3, 3), 1, "VALID"),
    (10, 10, 8, 4, (1, 1), 1, "SAME"),
]


@pytest.mark.parametrize("case", CASES)
def test_value_and_gradients_match_lax(case):
    h, w, cin, cout, kernel, stride, padding = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, h, w, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(*kernel, cin, cout)), jnp.float32)
    strides = (stride, stride)
    want, want_vjp = jax.vjp(lambda x, k: _lax(x, k, strides, padding), x, k)
    got, got_vjp = jax.vjp(lambda x, k: _tap(x, k, strides, padding), x, k)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))
    dy = jnp.asarray(rng.normal(size=want.shape), jnp.float32)
    for g, r in zip(got_vjp(dy), want_vjp(dy), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))))


@pytest.mark.parametrize("case", [CASES[0], CASES[4]])
def test_per_example_gradients_under_vmap(case):
    """The DP vmap method differentiates tap_conv per example: it must agree with lax."""
    h, w, cin, cout, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(4, 1, h, w, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(*kernel, cin, cout)), jnp.float32)

    def per_example(conv):
        loss = lambda k, xi: jnp.sum(jnp.sin(conv(xi, k, (stride, stride), padding)))
        return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(k, x)

    want = per_example(_lax)
    np.testing.assert_allclose(per_example(_tap), want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


def test_unsupported_arguments_fall_through_to_lax():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 9, 9, 4)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 2, 6)), jnp.float32)
    args = dict(rhs_dilation=(2, 2), feature_group_count=2, dimension_numbers=NHWC)
    np.testing.assert_array_equal(
        tap_conv(x, k, (1, 1), "SAME", **args), lax.conv_general_dilated(x, k, (1, 1), "SAME", **args)
    )


def test_negative_padding_crops():
    """A negative pad crops the input. (XLA's own CPU convolution returns garbage there.)"""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 12, 16, 5)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(2, 1, 5, 7)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(2, 11, 15, 7)), jnp.float32)
    got, got_vjp = jax.vjp(lambda x, k: _tap(x, k, (1, 1), ((-1, 1), (0, -1))), x, k)
    want, want_vjp = jax.vjp(lambda x, k: _lax(x[:, 1:, :15], k, (1, 1), ((0, 1), (0, 0))), x, k)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    for g, r in zip(got_vjp(dy), want_vjp(dy), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3)
