"""Frames -> ResNet-50 input: resize to 224x224, then one of two normalisations.

The normalisation must be the one the weights were trained with; the converted weights'
``spec.json`` records it (``"preprocessing"``), and feeding the other one costs accuracy
silently (the net still runs), so callers should read it from the spec, not hard-code it.

- ``"caffe_bgr"``: the paper's (section 4, "Training Details", i.e. Keras'
  ``imagenet_utils.preprocess_input`` in caffe mode, what Keras' ResNet50 weights expect):
  RGB -> BGR, subtract the ImageNet mean in 0..255 units, BGR order
  ``[103.939, 116.779, 123.68]``, no scaling (values stay roughly in -124..152).
- ``"torchvision"``: what torchvision's ResNet-50 weights (``resnet50-0676ba61.pth``,
  ``resnet50-11ad3fa6.pth``) expect: RGB, /255, subtract ``[0.485, 0.456, 0.406]``, divide by
  ``[0.229, 0.224, 0.225]``. Weights converted by ``resnet_weights.convert_torchvision`` need this.

Resizing is bilinear with antialiasing (``jax.image.resize``), as torchvision's tensor
``Resize`` does by default; 240x320 -> 224x224 barely downsamples, so the choice is minor.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

MODES = ("caffe_bgr", "torchvision")
SIZE = 224
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN_RGB = (0.485, 0.456, 0.406)
TORCHVISION_STD_RGB = (0.229, 0.224, 0.225)


def normalize(frames_rgb: ArrayLike, *, mode: str, value_range: float = 255.0) -> jax.Array:
    """Channel normalisation only (no resize).

    Args:
      frames_rgb: [..., 3] RGB, uint8 or float, with values in 0..value_range.
      mode: "caffe_bgr" or "torchvision".
      value_range: 255 for uint8-like frames, 1.0 for the decoder's [0, 1] reconstructions.

    Returns:
      float32 [..., 3], BGR for "caffe_bgr", RGB for "torchvision".
    """
    x = jnp.asarray(frames_rgb).astype(jnp.float32) * (255.0 / value_range)  # now 0..255
    if mode == "caffe_bgr":
        return x[..., ::-1] - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32)
    if mode == "torchvision":
        mean = jnp.asarray(TORCHVISION_MEAN_RGB, jnp.float32)
        std = jnp.asarray(TORCHVISION_STD_RGB, jnp.float32)
        return (x / 255.0 - mean) / std
    raise ValueError(f"preprocessing mode must be one of {MODES}, got {mode!r}")


def preprocess(
    frames_rgb: ArrayLike, *, mode: str, value_range: float = 255.0, size: int = SIZE
) -> jax.Array:
    """Resize [N, H, W, 3] RGB frames to [N, size, size, 3] and normalise them for the backbone.

    Resizing happens before normalising (in 0..255 units) so both modes see the same pixels.
    Jittable; ``mode``, ``value_range`` and ``size`` are static.
    """
    x = jnp.asarray(frames_rgb).astype(jnp.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB frames [N, H, W, 3], got shape {tuple(x.shape)}")
    if x.shape[1:3] != (size, size):
        x = jax.image.resize(x, (x.shape[0], size, size, 3), method="linear", antialias=True)
    return normalize(x, mode=mode, value_range=value_range)
