"""Checks on every frame before it reaches the model.

A latent is untrusted input: a buggy camera, a stolen camera key, or a fuzzer
can send anything. Each check fails with a stable ``code`` and a message that
says what was expected, so the camera's operator can fix it; the stream stays
open. Cost: one pass over the payload for the finite check (4,800 values at
120x160, microseconds).

Every header field is checked against the range of what consumes it, not only
its type: ``frame_index`` against the store's BIGINT (a larger one
raised ``OverflowError`` inside a tick and failed every camera's frames of it),
``timestamp`` against a window around the server's clock (``1e300`` was stored
and broke ``launch.alerts``), ``run_id`` against a charset every store and log
takes as is (PostgreSQL TEXT refuses NUL; SQLite refuses lone surrogates).
"""

import dataclasses
import re
import time

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
    # Capture times are Unix seconds from the camera's clock. Past: a camera may resend frames
    # held in its window through a long outage (a day covers it). Future: only clock skew.
    max_timestamp_age_s: float = 86400.0
    max_timestamp_ahead_s: float = 300.0


# The store's integer columns are signed 64-bit (SQLite INTEGER, PostgreSQL BIGINT).
MAX_FRAME_INDEX = 2**63 - 1
RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the camera client's is 16 hex digits


def validate_frame(message, *, peer_camera_id, known_cameras, limits, now=None):
    """The frame's latent as float32 [h, w, c], or RejectedFrame.

    Args:
      message: a ``wire.FrameMessage``.
      peer_camera_id: the CN of the verified client certificate of this stream.
      known_cameras: the camera ids this server serves.
      limits: ``Limits``.
      now: the server's clock (Unix seconds; default ``time.time()``) for the timestamp window.
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
    if not RUN_ID.fullmatch(message.run_id):
        raise RejectedFrame(
            "bad_run_id", "run_id must be 1 to 64 characters of letters, digits, '.', '_' or '-'"
        )
    if not 0 <= message.frame_index <= MAX_FRAME_INDEX:
        raise RejectedFrame(
            "bad_frame_index", f"frame_index {message.frame_index} is outside [0, {MAX_FRAME_INDEX}]"
        )
    _check_timestamp(message.timestamp, limits, time.time() if now is None else now)
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
    if message.dtype == "int8" and not 0 < message.scale <= limits.max_abs_value:
        # Also bounds the product: a huge scale would overflow float32 in dequantize.
        raise RejectedFrame(
            "bad_scale", f"int8 scale {message.scale} must be in (0, {limits.max_abs_value:g}]"
        )
    latent = quantization.dequantize(message.array(), scale=message.scale)
    finite = np.isfinite(latent)
    if not finite.all():
        raise RejectedFrame("not_finite", f"latent has {int((~finite).sum())} non-finite value(s)")
    peak = float(np.max(np.abs(latent))) if latent.size else 0.0
    if peak > limits.max_abs_value:
        raise RejectedFrame("out_of_range", f"latent magnitude {peak:g} exceeds {limits.max_abs_value:g}")
    return latent


def _check_timestamp(timestamp, limits, now):
    if not np.isfinite(timestamp):
        raise RejectedFrame("bad_timestamp", f"timestamp {timestamp} is not finite")
    low, high = now - limits.max_timestamp_age_s, now + limits.max_timestamp_ahead_s
    if not low <= timestamp <= high:
        raise RejectedFrame(
            "bad_timestamp",
            f"timestamp {timestamp:.6g} is outside the server's window [{low:.0f}, {high:.0f}] "
            f"(now - {limits.max_timestamp_age_s:g} s to now + {limits.max_timestamp_ahead_s:g} s): "
            "set the camera's clock (NTP)",
        )
