"""A stride-2 transposed convolution computed as one matrix product per output phase.

``lax.conv_transpose(x, k, (2, 2), "SAME")`` (what ``flax.linen.ConvTranspose``
runs) inserts zeros between input pixels and convolves. On XLA's CPU backend
its kernel gradient is pathologically slow, about 20x this formulation's on the
autoencoder's last layer (``shared/reference/xla_cpu_notes.md``, BUILD_NOTES.md).

Each output pixel of a stride-2 transposed convolution sees only the kernel
taps that land on real (non-inserted) input pixels, and which taps those are
depends only on the output pixel's parity. So the output is four stride-1
convolutions of the undilated input, one per (row parity, column parity), with
the matching subsets of taps, interleaved (depth-to-space). Same parameters,
same outputs, a quarter of the multiply-adds of the zero-inserted version.
Each of those convolutions runs here as one matrix product over the input's
windows (``phase_conv_transpose``).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models.tap_conv import kernel_grad


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


def phase_conv_transpose(
    x: jax.Array, kernel: jax.Array, *, stride: int = 2, precision: jax.lax.PrecisionLike = None
) -> jax.Array:
    """Equals ``lax.conv_transpose(x, kernel, (stride, stride), "SAME")``, NHWC / HWIO.

    Each output phase is one matrix product: the input's windows at the offsets
    that phase reads, ``[N*H*W, taps*Cin]``, times its taps ``[taps*Cin, Cout]``
    (for 3x3 / stride 2: 4, 2, 2 and 1 taps); the phases are interleaved
    (depth-to-space). XLA's CPU dot runs near matrix speed, its convolutions
    (one per phase, what this replaced) did not; the products' gradients are
    products too. A single product over all phases, with zeros for the taps a
    phase does not read (16/9 of the multiply-adds), was slower forward
    (``BUILD_NOTES.md``).

    Args:
      x: [N, H, W, Cin].
      kernel: [kh, kw, Cin, Cout].
    Returns:
      [N, stride * H, stride * W, Cout].
    """
    kh, kw, cin, cout = kernel.shape
    n, h, w, _ = x.shape
    plans = [[_phase_taps(k, stride, phase) for phase in range(stride)] for k in (kh, kw)]
    lo = [min(o for _, offs in plan for o in offs) for plan in plans]
    hi = [max(o for _, offs in plan for o in offs) for plan in plans]
    pad_lo = [max(-a, 0) for a in lo]
    xp = jnp.pad(x, ((0, 0), (pad_lo[0], max(hi[0], 0)), (pad_lo[1], max(hi[1], 0)), (0, 0)))
    rows = []
    for taps_h, offs_h in plans[0]:
        cols = []
        for taps_w, offs_w in plans[1]:
            # This phase's windows [N*H*W, taps*Cin] times its taps [taps*Cin, Cout].
            windows = jnp.concatenate(
                [
                    xp[:, oh + pad_lo[0] : oh + pad_lo[0] + h, ow + pad_lo[1] : ow + pad_lo[1] + w]
                    for oh in offs_h
                    for ow in offs_w
                ],
                axis=-1,
            )
            taps = kernel[np.asarray(taps_h)][:, np.asarray(taps_w)].reshape(-1, cout)
            z = jnp.dot(windows.reshape(n * h * w, -1), taps, precision=precision)
            cols.append(z.reshape(n, h, w, cout))
        rows.append(jnp.stack(cols, axis=3))  # [N, H, W, stride(w), Cout]
    y = jnp.stack(rows, axis=2)  # [N, H, stride(h), W, stride(w), Cout]
    return y.reshape(n, h * stride, w * stride, cout)


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
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, cin, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        dtype = self.dtype or x.dtype
        y = phase_conv_transpose(x.astype(dtype), kernel.astype(dtype), stride=self.stride)
        return y + bias.astype(dtype)


def per_example_grads(module: PhaseConvTranspose, x: jax.Array, g: jax.Array) -> dict[str, jax.Array]:
    """Per-example grads of a ``PhaseConvTranspose`` from its input x and output gradient g
    (``models.per_example``): each tap belongs to exactly one phase, so the kernel gradient
    is one per-example ``kernel_grad`` per phase."""
    kh, kw = module.kernel_size
    s = module.stride
    rows = [[None] * kw for _ in range(kh)]
    for ph in range(s):
        taps_h, offs_h = _phase_taps(kh, s, ph)
        for pw in range(s):
            taps_w, offs_w = _phase_taps(kw, s, pw)
            pads = ((-min(offs_h), max(offs_h)), (-min(offs_w), max(offs_w)))
            if any(p < 0 for pad in pads for p in pad):
                raise NotImplementedError(f"layerwise per-example grads: cropping phase in {module.path}")
            sub = kernel_grad(
                x, g[:, ph::s, pw::s], (len(taps_h), len(taps_w)), (1, 1), pads, per_example=True
            )
            for a, th in enumerate(taps_h):
                for b, tw in enumerate(taps_w):
                    rows[th][tw] = sub[:, a, b]
    grads = {"kernel": jnp.stack([jnp.stack(r, axis=1) for r in rows], axis=1), "bias": g.sum(axis=(1, 2))}
    return grads
