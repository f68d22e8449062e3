"""A convolution whose kernel gradient is one matrix product per kernel tap.

XLA's CPU backend lowers the kernel gradient of a batched convolution to a
convolution with the batch as the contracted "feature" dimension, and runs it
far below the machine's matrix-multiply speed: the kernel gradient takes
several times the forward pass (measured per layer in BUILD_NOTES.md,
"Kernel gradients as matrix products").

The kernel gradient of a convolution is, for each tap (i, j), the product of
the input window that tap sees with the output gradient, contracted over
batch and output pixels: ``dk[i, j] = x_window(i, j)^T @ dy``, a
[Cin, N*H*W] x [N*H*W, Cout] matrix product, which XLA runs at matrix
speed, an order of magnitude above its convolution here. The
forward pass and the input gradient stay XLA's own convolutions, which are
reasonable on this backend. The windows are strided slices that XLA fuses
into the dot's operand; no im2col patches are materialised.

``tap_conv`` has the signature of ``lax.conv_general_dilated`` so that
``flax.linen.Conv(..., conv_general_dilated=tap_conv)`` uses it; anything it
does not cover (dilation, groups, other layouts) falls through to
``lax.conv_general_dilated`` unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x, k, strides, pads, precision):
    return lax.conv_general_dilated(x, k, strides, pads, dimension_numbers=_NHWC, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _tap_conv(x, k, strides, pads, precision):
    return _conv(x, k, strides, pads, precision)


def _tap_conv_fwd(x, k, strides, pads, precision):
    return _conv(x, k, strides, pads, precision), (x, k)


Pads = tuple[tuple[int, int], tuple[int, int]]


def kernel_grad(
    x: jax.Array,
    dy: jax.Array,
    kernel_hw: tuple[int, int],
    strides: tuple[int, int],
    pads: Pads,
    *,
    per_example: bool = False,
) -> jax.Array:
    """The kernel gradient of a convolution as matrix products over all rows at once.

    Args:
      x: the convolution's input [N, H, W, Cin]; dy: its output gradient [N, h, w, Cout].
      kernel_hw: (kh, kw). strides: (sh, sw). pads: ((lo, hi), (lo, hi)), non-negative.
      per_example: return [N, kh, kw, Cin, Cout], one gradient per example (the
        DP layerwise method), instead of their sum [kh, kw, Cin, Cout].

    The operand that gets one copy per tap is the cheaper one: the input's
    windows (im2col, ``kh*kw/stride^2`` times the input's size) in general, or,
    for a stride-1 layer with few output channels (the decoder's last
    convolution: 240 -> 3), the output gradient shifted once per tap, so that
    the 240-channel input is read once and never copied. Both are reshaped to
    one contracted axis first: XLA's CPU dot with several contracting
    dimensions (batch, height, width) measured 6x slower than the same
    contraction as a 2-D product.
    """
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw = kernel_hw
    if strides == (1, 1) and kh * kw * dy.shape[-1] < x.shape[-1]:
        return _kernel_grad_shifted_dy(xp, dy, kernel_hw, per_example=per_example)
    return _kernel_grad_windows(xp, dy, kernel_hw, strides, per_example=per_example)


def _rows_product(n, per_example):
    """The row shape both operands are reshaped to, and the einsum contracting those rows:
    batched over examples, or one product over every example's rows."""
    if per_example:
        return (n, -1), "nki,nko->nio"
    return (-1,), "ki,ko->io"


def _kernel_grad_shifted_dy(xp, dy, kernel_hw, *, per_example):
    """Stride 1, few output channels: dy shifted once per tap against the padded input, read once."""
    kh, kw = kernel_hw
    n, out_h, out_w, cout = dy.shape
    cin = xp.shape[-1]
    rows, product = _rows_product(n, per_example)
    hp, wp = xp.shape[1], xp.shape[2]
    # shifted[q] = dy[q - (i, j)], zero outside: pairs xp[p + (i, j)] with dy[p].
    shifted = jnp.concatenate(
        [
            jnp.pad(dy, ((0, 0), (i, hp - out_h - i), (j, wp - out_w - j), (0, 0)))
            for i in range(kh)
            for j in range(kw)
        ],
        axis=-1,
    )
    dk = jnp.einsum(
        product,
        shifted.reshape(*rows, kh * kw * cout),
        xp.reshape(*rows, cin),
        preferred_element_type=jnp.float32,
    )  # [(N,) taps * Cout, Cin]
    dk = dk.reshape(*rows[:-1], kh, kw, cout, cin)
    return jnp.swapaxes(dk, -1, -2)


def _kernel_grad_windows(xp, dy, kernel_hw, strides, *, per_example):
    """The general case: the padded input's window of every tap (im2col) against dy."""
    kh, kw = kernel_hw
    sh, sw = strides
    n, out_h, out_w, cout = dy.shape
    cin = xp.shape[-1]
    rows, product = _rows_product(n, per_example)
    windows = jnp.concatenate(
        [
            lax.slice(
                xp,
                (0, i, j, 0),
                (n, i + sh * (out_h - 1) + 1, j + sw * (out_w - 1) + 1, cin),
                (1, sh, sw, 1),
            )
            for i in range(kh)
            for j in range(kw)
        ],
        axis=-1,
    )
    dk = jnp.einsum(
        product,
        dy.reshape(*rows, cout),
        windows.reshape(*rows, kh * kw * cin),
        preferred_element_type=jnp.float32,
    )  # [(N,) Cout, taps * Cin]
    dk = dk.reshape(*rows[:-1], cout, kh, kw, cin)
    return jnp.moveaxis(dk, -4, -1)


def _tap_conv_bwd(strides, pads, precision, res, dy):
    x, k = res
    _, input_vjp = jax.vjp(lambda x: _conv(x, k, strides, pads, precision), x)
    (dx,) = input_vjp(dy)
    dk = kernel_grad(x, dy, k.shape[:2], strides, pads)
    return dx, dk.astype(k.dtype)


_tap_conv.defvjp(_tap_conv_fwd, _tap_conv_bwd)


def _shifted_output_conv(x, k, pads, precision):
    """Stride-1 convolution with few output channels as one 2-D product, then shifts.

    ``z = x @ k`` over all taps at once ([N*H*W, Cin] x [Cin, taps*Cout]), and
    each tap's slice of ``z`` shifted into place and summed. The wide input is
    read once by a plain matrix product, forward and backward (its gradient is
    ``dz @ k^T``, the kernel's ``x^T @ dz``), instead of nine passes through
    XLA's convolution; the shifted sums touch only ``taps*Cout`` channels
    (about half the time of ``lax.conv_general_dilated`` on the decoder's
    240 -> 3 layer: BUILD_NOTES.md).
    """
    kh, kw, cin, cout = k.shape
    n, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    hp, wp = xp.shape[1], xp.shape[2]
    out_h, out_w = hp - kh + 1, wp - kw + 1
    z = jnp.dot(
        xp.reshape(-1, cin), k.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout), precision=precision
    ).reshape(n, hp, wp, kh, kw, cout)
    return sum(z[:, i : i + out_h, j : j + out_w, i, j] for i in range(kh) for j in range(kw))


def tap_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: lax.ConvGeneralDilatedDimensionNumbers = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: lax.PrecisionLike = None,
    preferred_element_type: DTypeLike | None = None,
) -> jax.Array:
    """``lax.conv_general_dilated`` with a matrix-product kernel gradient (NHWC/HWIO only)."""
    plain = (
        all(d == 1 for d in (lhs_dilation or (1,)))
        and all(d == 1 for d in (rhs_dilation or (1,)))
        and feature_group_count == 1
        and batch_group_count == 1
        and preferred_element_type is None
        and lhs.ndim == 4
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if not plain:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            batch_group_count=batch_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    strides = tuple(int(s) for s in window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    if any(p < 0 for pad in pads for p in pad):
        # A negative pad crops. XLA's CPU convolution returns garbage for negative padding
        # (values of 1e35 measured, jax 0.10.2), so crop explicitly and pad with zeros only.
        h, w = lhs.shape[1], lhs.shape[2]
        lo = (0, max(-pads[0][0], 0), max(-pads[1][0], 0), 0)
        hi = (lhs.shape[0], h - max(-pads[0][1], 0), w - max(-pads[1][1], 0), lhs.shape[3])
        lhs = lax.slice(lhs, lo, hi)
        pads = tuple((max(a, 0), max(b, 0)) for a, b in pads)
    kh, kw, cin, cout = rhs.shape
    if strides == (1, 1) and kh * kw * cout < cin:
        return _shifted_output_conv(lhs, rhs, pads, precision)
    return _tap_conv(lhs, rhs, strides, pads, precision)
