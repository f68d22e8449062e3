"""The paper's convolutional autoencoder (section 3.3.1), split camera / server.

Encoder (camera): three 3x3 stride-2 convolutions with 240, 64 and 16 filters,
ReLU after each: 240x320x3 -> 30x40x16 latent.
Decoder (server): three 3x3 stride-2 transposed convolutions with 16, 64 and
240 filters (mirroring the encoder), ReLU after each, then a 3x3 convolution to
3 channels and a sigmoid: 30x40x16 -> 240x320x3 in [0, 1].

Choices the paper leaves open (recorded in BUILD_NOTES.md): "SAME" padding;
ReLU on the latent too (the paper puts ReLU on every encoder layer); inputs
scaled to [0, 1]; the transposed convolutions run as four phase convolutions
(``phase_conv_transpose``), the same function with a fast CPU gradient.

Fully convolutional: any input whose sides are multiples of 8 works, so
``runlocal`` trains at 120x160. No BatchNorm: per-example DP gradients must
never mix examples.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ppvad_jax.models.phase_conv_transpose import PhaseConvTranspose
from ppvad_jax.models.tap_conv import tap_conv

ENCODER_FEATURES = (240, 64, 16)
DECODER_FEATURES = (16, 64, 240)
DOWNSAMPLE = 8


def check_frames(x: jax.Array | np.ndarray) -> None:
    """Raises ValueError unless x is [N, H, W, 3] with H and W multiples of 8."""
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % DOWNSAMPLE or x.shape[2] % DOWNSAMPLE:
        raise ValueError(
            f"expected frames [N, H, W, 3] with H and W multiples of {DOWNSAMPLE} "
            f"(e.g. 240x320 or 120x160), got shape {tuple(x.shape)}"
        )


class Encoder(nn.Module):
    """Frame [N, H, W, 3] in [0, 1] -> latent [N, H/8, W/8, 16]."""

    features: tuple = ENCODER_FEATURES
    dtype: object = None

    @nn.compact
    def __call__(self, frames: jax.Array | np.ndarray) -> jax.Array:
        check_frames(frames)
        x = frames.astype(self.dtype or jnp.float32)
        for i, f in enumerate(self.features):
            x = nn.relu(
                nn.Conv(
                    f,
                    (3, 3),
                    strides=(2, 2),
                    padding="SAME",
                    dtype=self.dtype,
                    conv_general_dilated=tap_conv,
                    name=f"conv{i}",
                )(x)
            )
        return x


class Decoder(nn.Module):
    """Latent [N, h, w, 16] -> reconstruction [N, 8h, 8w, 3] in [0, 1] (float32)."""

    features: tuple = DECODER_FEATURES
    dtype: object = None

    @nn.compact
    def __call__(self, latent: jax.Array | np.ndarray) -> jax.Array:
        x = latent.astype(self.dtype or jnp.float32)
        for i, f in enumerate(self.features):
            x = nn.relu(PhaseConvTranspose(f, dtype=self.dtype, name=f"deconv{i}")(x))
        x = nn.Conv(3, (3, 3), padding="SAME", dtype=self.dtype, conv_general_dilated=tap_conv, name="out")(x)
        return nn.sigmoid(x.astype(jnp.float32))


class Autoencoder(nn.Module):
    """Encoder + decoder; params ``{"encoder": ..., "decoder": ...}`` so each half
    can be saved, exported and run on its own side.

    ``features`` are the encoder's; the decoder mirrors them. Tests use narrow
    ones; everything else uses the paper's (240, 64, 16).
    """

    dtype: object = None
    features: tuple = ENCODER_FEATURES

    def setup(self) -> None:
        self.encoder = Encoder(features=self.features, dtype=self.dtype)
        self.decoder = Decoder(features=tuple(reversed(self.features)), dtype=self.dtype)

    def __call__(self, frames: jax.Array | np.ndarray) -> jax.Array:
        return self.decoder(self.encoder(frames))

    def encode(self, frames: jax.Array | np.ndarray) -> jax.Array:
        return self.encoder(frames)

    def decode(self, latent: jax.Array | np.ndarray) -> jax.Array:
        return self.decoder(latent)


def to_unit_range(frames_uint8: ArrayLike) -> jax.Array:
    """uint8 frames -> float32 in [0, 1]."""
    return jnp.asarray(frames_uint8, jnp.float32) / 255.0
