"""Checks on every frame before it reaches the model.

A latent is untrusted input: a buggy camera, a stolen camera key, or a fuzzer
can send anything. Each check fails with a stable ``code`` and a message that
says what was expected, so the camera's operator can fix it; the stream stays
open. Cost: one pass over the payload for the finite check (4,800 values at
120x160, microseconds).
"""

import dataclasses

import numpy as np

from ppvad_jax.serving import quantization, wire


class RejectedFrame(wire.WireError):
    """A parsed frame that fails a check; ``code`` names the check."""


@dataclasses.dataclass(frozen=True)
class Limits:
    latent_shape: tuple  # the decoder's input shape without the batch axis
    max_message_bytes: int = 1 << 18  # 256 KiB: 3x a float32 latent at 240x320
    max_abs_value: float = 1e4  # far above any encoder output, far below float16's overflow
    allowed_dtypes: tuple = ("float16", "int8", "float32")


def validate_frame(message, *, peer_camera_id, known_cameras, limits):
    """The frame's latent as float32 [h, w, c], or RejectedFrame.

    Args:
      message: a ``wire.FrameMessage``.
      peer_camera_id: the CN of the verified client certificate of this stream.
      known_cameras: the camera ids this server serves.
      limits: ``Limits``.
    """
    if message.size > limits.max_message_bytes:
        raise RejectedFrame(
            "too_large", f"message of {message.size} bytes exceeds the limit of {limits.max_message_bytes}"
        )
    if message.camera_id != peer_camera_id:
        raise RejectedFrame(
            "camera_mismatch",
            f"camera_id {message.camera_id!r} does not match the client certificate's {peer_camera_id!r}",
        )
    if message.camera_id not in known_cameras:
        raise RejectedFrame("unknown_camera", f"camera {message.camera_id!r} is not known to this server")
    if not message.run_id or len(message.run_id) > 64:
        raise RejectedFrame("bad_run_id", "run_id must be a non-empty string of at most 64 characters")
    if message.frame_index < 0:
        raise RejectedFrame("bad_frame_index", f"frame_index {message.frame_index} is negative")
    if not np.isfinite(message.timestamp):
        raise RejectedFrame("bad_timestamp", f"timestamp {message.timestamp} is not finite")
    if message.dtype not in limits.allowed_dtypes:
        raise RejectedFrame("dtype", f"dtype {message.dtype!r} is not one of {limits.allowed_dtypes}")
    if tuple(message.shape) != tuple(limits.latent_shape):
        raise RejectedFrame(
            "shape",
            f"latent shape {list(message.shape)} differs from the decoder's {list(limits.latent_shape)}",
        )
    expected = int(np.prod(message.shape)) * np.dtype(message.dtype).itemsize
    if len(message.payload) != expected:
        raise RejectedFrame(
            "payload_size",
            f"payload has {len(message.payload)} bytes; "
            f"{message.dtype} {list(message.shape)} needs {expected}",
        )
    if message.dtype == "int8" and not (np.isfinite(message.scale) and message.scale > 0):
        raise RejectedFrame("bad_scale", f"int8 scale {message.scale} must be finite and > 0")
    latent = quantization.dequantize(message.array(), scale=message.scale)
    finite = np.isfinite(latent)
    if not finite.all():
        raise RejectedFrame("not_finite", f"latent has {int((~finite).sum())} non-finite value(s)")
    peak = float(np.max(np.abs(latent))) if latent.size else 0.0
    if peak > limits.max_abs_value:
        raise RejectedFrame("out_of_range", f"latent magnitude {peak:g} exceeds {limits.max_abs_value:g}")
    return latent
