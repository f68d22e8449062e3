"""Image quality of reconstructions: MSE, PSNR and SSIM (dm-pix), per frame.

Images are float in [0, 1], [N, H, W, 3]. PSNR uses a peak of 1.0, so it is the
same number as for uint8 images with a peak of 255.
"""

from __future__ import annotations

from collections.abc import Mapping

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt


@jax.jit
def per_frame(
    originals: jax.Array | np.ndarray, reconstructions: jax.Array | np.ndarray
) -> dict[str, jax.Array]:
    """``{"mse", "psnr", "ssim"}``, each float32 [N]."""
    originals = originals.astype(jnp.float32)
    reconstructions = reconstructions.astype(jnp.float32)
    mse = jnp.mean(jnp.square(originals - reconstructions), axis=(1, 2, 3))
    return {
        "mse": mse,
        "psnr": dm_pix.psnr(originals, reconstructions),
        "ssim": dm_pix.ssim(originals, reconstructions),
    }


def summarize(per_frame_values: Mapping[str, npt.ArrayLike]) -> dict[str, float | int]:
    """Means over frames, ignoring non-finite values (which are counted). Host-side numpy."""
    out = {}
    for name, values in per_frame_values.items():
        values = np.asarray(values, np.float64)
        finite = np.isfinite(values)
        out[name] = float(values[finite].mean()) if finite.any() else float("nan")
        out[f"{name}_nonfinite"] = int((~finite).sum())
    return out
