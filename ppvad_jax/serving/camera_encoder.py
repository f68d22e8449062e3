"""The camera's side of the model: encoder, optional latent local DP, quantisation.

The raw frame never leaves this object: ``encode`` returns the latent as it
will be sent (privatised if asked, then quantised). The encoder is the
exported half of the autoencoder (``models.autoencoder_io``), jitted, for one
frame at a time (a camera has one frame per tick); at 120x160 it costs about
17 ms on one CPU core of the development machine.

Face redaction (``models.face_redaction``, optional): faces found on the raw frame are replaced
before the encoder sees it, so no face is encoded; ``faces_redacted`` counts them.

Local DP (``privacy.latent_ldp``): clip each latent to L2 norm C and add
Gaussian noise, with a fresh key per frame from a secret base key drawn at
start (reusing a key would let two frames' difference cancel the noise).
"""

import secrets

import jax
import numpy as np

from ppvad_jax.models import autoencoder_io
from ppvad_jax.serving import quantization


def _latent_ldp():
    try:
        from ppvad_jax.privacy import latent_ldp
    except ImportError as e:
        raise RuntimeError(
            "latent local DP is not available yet (ppvad_jax/privacy/latent_ldp.py, the privacy issue)"
        ) from e
    return latent_ldp


class CameraEncoder:
    def __init__(
        self, export_dir, *, quantize="float16", ldp_noise_multiplier=None, ldp_l2_bound=1.0, redactor=None
    ):
        if quantize not in quantization.MODES:
            raise ValueError(f"quantize must be one of {quantization.MODES}, got {quantize!r}")
        self._encode, self.spec = autoencoder_io.load_encoder(export_dir)
        self.frame_shape = tuple(self.spec["frame_shape"])
        self.latent_shape = tuple(self.spec["latent_shape"])
        self.quantize = quantize
        self.redactor, self.faces_redacted = redactor, 0
        self.ldp = None
        if ldp_noise_multiplier is not None:
            latent_ldp = _latent_ldp()
            self.ldp = latent_ldp.LatentLdpConfig(
                enabled=True, l2_bound=float(ldp_l2_bound), noise_multiplier=float(ldp_noise_multiplier)
            )
            self.ldp_epsilon = latent_ldp.epsilon(self.ldp)
            self._privatize = latent_ldp.privatize_latent
            self._ldp_key = jax.random.key(secrets.randbits(63))

    @property
    def mechanism(self):
        """What this camera does to a frame, in ``launch.frame_privacy``'s grammar (e.g.
        ``redact_fill@0.8+ae``, ``ldp1.0+ae``): declared to the server, shown to operators."""
        parts = []
        if self.redactor is not None:
            parts.append(f"redact_{self.redactor.method}@{self.redactor.margin:g}")
        if self.ldp is not None:
            parts.append(f"ldp{self.ldp.noise_multiplier:g}")
        return "+".join([*parts, "ae"])

    @property
    def size(self):
        """``(height, width)`` the frames must have."""
        return self.frame_shape[:2]

    def latent(self, frame_uint8, *, frame_index):
        """float32 [h, w, c]: the encoder's latent of one RGB uint8 frame, privatised if asked."""
        if self.redactor is not None:
            frame_uint8, found = self.redactor.redact(frame_uint8)
            self.faces_redacted += found
        frame = np.asarray(frame_uint8, np.float32)[None] / 255.0
        latent = self._encode(frame)
        if self.ldp is not None:
            latent = self._privatize(latent, jax.random.fold_in(self._ldp_key, frame_index), self.ldp)
        return np.asarray(latent[0], np.float32)

    def encode(self, frame_uint8, *, frame_index):
        """``(array, scale)``: the quantised latent to send (``scale`` only for int8)."""
        return quantization.quantize(self.latent(frame_uint8, frame_index=frame_index), self.quantize)
