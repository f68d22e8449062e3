"""A stride-2 transposed convolution computed as four ordinary convolutions.

``lax.conv_transpose(x, k, (2, 2), "SAME")`` (what ``flax.linen.ConvTranspose``
runs) inserts zeros between input pixels and convolves. On XLA's CPU backend
its kernel gradient is pathologically slow (17.2 s against 0.86 s for this
formulation on the autoencoder's last layer; ``shared/reference/xla_cpu_notes.md``),
and on a GPU this formulation is about 2x faster too.

Each output pixel of a stride-2 transposed convolution sees only the kernel
taps that land on real (non-inserted) input pixels, and which taps those are
depends only on the output pixel's parity. So the output is four stride-1
convolutions of the undilated input, one per (row parity, column parity), with
the matching subsets of taps, interleaved (depth-to-space). Same parameters,
same outputs, a quarter of the multiply-adds of the zero-inserted version.
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models.tap_conv import tap_conv


def _same_padding_low(kernel, stride):
    """Leading padding lax.conv_transpose uses for "SAME" (its ``pad_a``)."""
    pad_len = kernel + stride - 2
    return kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)


def _phase_taps(kernel, stride, phase):
    """Taps of one output phase, and the input offset each reads.

    Output o = stride * m + phase reads input (o + t - pad_low) / stride for
    every tap t where that is an integer.
    """
    pad_low = _same_padding_low(kernel, stride)
    taps = [t for t in range(kernel) if (phase + t - pad_low) % stride == 0]
    offsets = [(phase + t - pad_low) // stride for t in taps]
    return taps, offsets


def phase_conv_transpose(x, kernel, *, stride=2, precision=None):
    """Equals ``lax.conv_transpose(x, kernel, (stride, stride), "SAME")``, NHWC / HWIO.

    Args:
      x: [N, H, W, Cin].
      kernel: [kh, kw, Cin, Cout].
    Returns:
      [N, stride * H, stride * W, Cout].
    """
    kh, kw = kernel.shape[:2]
    rows = []
    for ph in range(stride):
        taps_h, offs_h = _phase_taps(kh, stride, ph)
        cols = []
        for pw in range(stride):
            taps_w, offs_w = _phase_taps(kw, stride, pw)
            sub = kernel[np.asarray(taps_h)][:, np.asarray(taps_w)]
            # y[m] = sum_t x[m + off_t] k[t]: a stride-1 correlation padded so that offsets
            # below 0 and past the end read zeros.
            padding = ((-min(offs_h), max(offs_h)), (-min(offs_w), max(offs_w)))
            cols.append(
                tap_conv(
                    x, sub, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision
                )
            )
        rows.append(jnp.stack(cols, axis=3))  # [N, H, W, stride(w), C]
    y = jnp.stack(rows, axis=2)  # [N, H, stride(h), W, stride(w), C]
    n, h, _, w, _, c = y.shape
    return y.reshape(n, h * stride, w * stride, c)


class PhaseConvTranspose(nn.Module):
    """Drop-in for ``nn.ConvTranspose(features, (k, k), strides=(2, 2), padding="SAME")``.

    Parameters have the same names and shapes (``kernel`` HWIO, ``bias``), so
    weights move between the two unchanged.
    """

    features: int
    kernel_size: tuple = (3, 3)
    stride: int = 2
    dtype: object = None  # computation dtype; params stay float32
    kernel_init: object = nn.initializers.lecun_normal()
    bias_init: object = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        cin = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, cin, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        dtype = self.dtype or x.dtype
        y = phase_conv_transpose(x.astype(dtype), kernel.astype(dtype), stride=self.stride)
        return y + bias.astype(dtype)
