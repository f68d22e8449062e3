"""The messages a camera and the analysis server exchange, without generated code.

Why not protobuf: the project avoids a protoc / grpcio-tools build step; gRPC
carries opaque bytes with generic handlers, and these two formats are small
enough to document here and to parse defensively (a malformed message must
yield a clear error, never an exception inside gRPC that kills the stream).

Frame (camera -> server), one per latent::

    offset  size  field
    0       4     magic b"PPVL"
    4       2     format version, uint16 big-endian (1)
    6       4     header length L, uint32 big-endian (at most 4 KiB)
    10      L     header: UTF-8 JSON object (below)
    10+L    rest  payload: the latent's bytes, C order, little-endian

    header = {
      "camera_id": str,        # must equal the CN of the camera's client certificate
      "run_id": str,           # random per camera process; (camera, run, frame) is the dedup key
      "frame_index": int,      # increasing within a run
      "timestamp": float,      # capture time, Unix seconds (alerts are stamped with it)
      "dtype": "float16" | "int8" | "float32",
      "shape": [h, w, c],      # the latent's shape; must equal the decoder's
      "scale": float,          # int8 only: value = int8 * scale (per frame)
      "mechanism": str         # optional: the camera's privacy mechanism, as launch.frame_privacy
                               # spells it (e.g. "redact_fill@0.8+ae"), shown on the console
    }

Response (server -> camera), one per frame and one per error: a UTF-8 JSON
object, ``{"v": 1, "status": ..., ...}`` with ``status`` one of ``STATUSES``
(see ``make_response``), padded with spaces to a multiple of 512 bytes
(``encode_response``). Cost upstream: about 140 bytes of framing and header
per frame against 4.8 KB (int8) to 9.6 KB (float16) of latent at 120x160.
"""

import dataclasses
import json
import struct

import numpy as np

MAGIC = b"PPVL"
VERSION = 1
_PREFIX = struct.Struct(">4sHI")
MAX_HEADER_BYTES = 4096
DTYPES = ("float16", "int8", "float32")
MAX_MECHANISM_CHARS = 200

# Response statuses. "ok": scored; "replayed": a frame the server had already committed
# (a resend after a reconnect), answered from the store; "error": not scored, the stream goes
# on (its ``retryable`` field says whether resending can help); "overloaded": dropped by
# back-pressure, slow down; "shutting_down": not processed, resend after reconnecting.
STATUSES = ("ok", "replayed", "error", "overloaded", "shutting_down")
RESPONSE_PAD = 512

# Error codes a camera should resend the frame for (every error response carries
# ``"retryable": true | false``; this table is how the server fills it in). The server's own
# failures are retryable: "internal" (a tick failed), "store" (the commit failed), "scorer"
# (the scorer failed), "resend" (an earlier frame of this camera failed: resend from it, in
# order, since the SAS is sequential). Every other code is the frame's own fault and final:
# resending the same bytes gets the same answer. The server turns a retryable code final after
# ``EngineOptions.max_frame_attempts`` failures of one frame, so a poison frame cannot loop.
RETRYABLE_CODES = frozenset({"internal", "store", "scorer", "resend"})


class WireError(ValueError):
    """A message that cannot be parsed; ``code`` is a stable machine-readable reason."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class FrameMessage:
    camera_id: str
    run_id: str
    frame_index: int
    timestamp: float
    dtype: str
    shape: tuple
    scale: float
    payload: bytes
    size: int  # the whole message's size in bytes, for the byte limit
    mechanism: str = (
        ""  # the camera's declared privacy mechanism (e.g. "redact_fill@0.8+ae"), shown to operators
    )

    def array(self):
        """The payload as an array of ``dtype`` and ``shape`` (the caller checked the sizes)."""
        return np.frombuffer(self.payload, np.dtype(self.dtype).newbyteorder("<")).reshape(self.shape)


def encode_frame(*, camera_id, run_id, frame_index, timestamp, latent, scale=None, mechanism=""):
    """Bytes for one latent. ``latent`` is float16, int8 (with ``scale``) or float32."""
    latent = np.ascontiguousarray(latent)
    header = {
        "camera_id": camera_id,
        "run_id": run_id,
        "frame_index": int(frame_index),
        "timestamp": float(timestamp),
        "dtype": latent.dtype.name,
        "shape": list(latent.shape),
    }
    if scale is not None:
        header["scale"] = float(scale)
    if mechanism:
        header["mechanism"] = str(mechanism)
    head = json.dumps(header, separators=(",", ":")).encode()
    payload = latent.astype(latent.dtype.newbyteorder("<"), copy=False).tobytes()
    return _PREFIX.pack(MAGIC, VERSION, len(head)) + head + payload


def decode_frame(data):
    """Parses one frame message; raises WireError (never anything else) if it is malformed.

    Checks the framing and the header's field types only; sizes, shapes and
    values against the model are ``validation.validate_frame``'s job.
    """
    try:
        return _decode_frame(data)
    except WireError:
        raise
    except Exception as e:  # any parse failure is the sender's fault, reported as such
        raise WireError("malformed", f"cannot parse the frame message: {type(e).__name__}: {e}") from e


def _decode_frame(data):
    data = bytes(data)
    if len(data) < _PREFIX.size:
        raise WireError(
            "malformed", f"message of {len(data)} bytes is shorter than the {_PREFIX.size}-byte prefix"
        )
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise WireError("malformed", f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise WireError("version", f"unsupported format version {version}; this server speaks {VERSION}")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(data):
        raise WireError("malformed", f"header length {head_len} is out of bounds")
    header = json.loads(data[_PREFIX.size : _PREFIX.size + head_len].decode("utf-8"))
    if not isinstance(header, dict):
        raise WireError("malformed", "the header is not a JSON object")

    def field(name, types, default=None, required=True):
        if name not in header:
            if required:
                raise WireError("malformed", f"header field {name!r} is missing")
            return default
        value = header[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise WireError("malformed", f"header field {name!r} has the wrong type {type(value).__name__}")
        return value

    shape = field("shape", list)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise WireError("malformed", f"shape {shape} is not a list of non-negative integers")
    dtype = field("dtype", str)
    if dtype not in DTYPES:
        raise WireError("dtype", f"dtype {dtype!r} is not one of {DTYPES}")
    return FrameMessage(
        camera_id=field("camera_id", str),
        run_id=field("run_id", str),
        frame_index=field("frame_index", int),
        timestamp=float(field("timestamp", (int, float))),
        dtype=dtype,
        shape=tuple(shape),
        scale=float(field("scale", (int, float), default=1.0, required=dtype == "int8")),
        payload=data[_PREFIX.size + head_len :],
        size=len(data),
        mechanism=_mechanism(field("mechanism", str, default="", required=False)),
    )


def _mechanism(value):
    if len(value) > MAX_MECHANISM_CHARS or not value.isprintable():
        raise WireError(
            "malformed", f"header field 'mechanism' is longer than {MAX_MECHANISM_CHARS} or unprintable"
        )
    return value


def make_response(status, **fields):
    """A response dict; ``status`` must be one of ``STATUSES``.

    An "error" needs a ``code`` and gets ``retryable`` from ``RETRYABLE_CODES`` unless given."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if status == "error":
        if "code" not in fields:
            raise ValueError("an error response needs a code")
        fields.setdefault("retryable", fields["code"] in RETRYABLE_CODES)
    return {"v": VERSION, "status": status, **fields}


def is_retryable(response):
    """Whether a camera should resend the frame of this error response (older servers sent no
    ``retryable`` field: their code decides)."""
    if response.get("status") != "error":
        return False
    flag = response.get("retryable")
    return bool(flag) if isinstance(flag, bool) else response.get("code") in RETRYABLE_CODES


def encode_response(response):
    """UTF-8 JSON, padded with trailing spaces to a multiple of ``RESPONSE_PAD`` bytes.

    TLS hides content, not length: without padding, a response that reports an
    alert (about 100 bytes more) would tell an eavesdropper when alerts happen.
    Cost: about 300 bytes a frame downstream.
    """
    data = json.dumps(response, separators=(",", ":")).encode()
    return data + b" " * (-len(data) % RESPONSE_PAD)


def decode_response(data):
    return json.loads(bytes(data).decode("utf-8"))
