"""Image quality of reconstructions: MSE, PSNR and SSIM (dm-pix), per frame.

Images are float in [0, 1], [N, H, W, 3]. PSNR uses a peak of 1.0, so it is the
same number as for uint8 images with a peak of 255.
"""

import dm_pix
import jax
import jax.numpy as jnp


@jax.jit
def per_frame(originals, reconstructions):
    """``{"mse", "psnr", "ssim"}``, each float32 [N]."""
    originals = originals.astype(jnp.float32)
    reconstructions = reconstructions.astype(jnp.float32)
    mse = jnp.mean(jnp.square(originals - reconstructions), axis=(1, 2, 3))
    return {
        "mse": mse,
        "psnr": dm_pix.psnr(originals, reconstructions),
        "ssim": dm_pix.ssim(originals, reconstructions),
    }


def summarize(per_frame_values):
    """Means over frames, ignoring non-finite values (which are counted)."""
    out = {}
    for name, values in per_frame_values.items():
        values = jnp.asarray(values)
        finite = jnp.isfinite(values)
        out[name] = float(jnp.where(finite, values, 0).sum() / jnp.maximum(finite.sum(), 1))
        out[f"{name}_nonfinite"] = int((~finite).sum())
    return out
