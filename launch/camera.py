"""A camera: reads frames, encodes them on CPU, streams the latents over mutual TLS, shows the answers.

  python -m launch.camera --source=runs/demo/world/Assault/Assault001_x264.avi --server=localhost:50051 \
      --certs_dir=certs --camera_id=cam1 --ae_export=runs/demo/autoencoder_dpadam/export --fps=10

``--source`` is a video file, a device index (``0``) or a stream URL (``rtsp://...``). Exits 0
when the source ends (or after ``--max_frames``) and every frame was scored; 3 if frames were
still unanswered after ``--drain_timeout_s`` (the server stayed unreachable); 4 if frames were
lost (a final error, or a retryable one still failing after ``--max_retries`` resends): the
count and the first frame numbers go to stderr. Frames shed under overload (live sources) are
counted in the summary, not as lost. Faces are redacted before encoding unless
``--redact_faces=none`` (``models.face_redaction``; the count is in the summary). Prints one
line per frame (``--quiet`` prints alerts only) and a JSON summary at the end.
"""

import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the camera's encoder runs on its CPU

from absl import app, flags  # noqa: E402

from ppvad_jax.models import face_redaction  # noqa: E402
from ppvad_jax.serving import camera_client, camera_encoder, compilation_cache  # noqa: E402

_SOURCE = flags.DEFINE_string("source", None, "Video file, device index or stream URL.", required=True)
_SERVER = flags.DEFINE_string("server", "localhost:50051", "HOST:PORT of the analysis server.")
_CERTS = flags.DEFINE_string("certs_dir", None, "ca.crt and CAMERA_ID.crt/.key.", required=True)
_CAMERA = flags.DEFINE_string("camera_id", None, "This camera's id (its certificate's CN).", required=True)
_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export dir.")
_FPS = flags.DEFINE_float("fps", 10.0, "Frames per second sent.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 0, "Stop after this many frames (0: until the source ends).")
_QUANTIZE = flags.DEFINE_enum("quantize", "float16", ["float16", "int8", "float32"], "Latent wire format.")
_LDP_SIGMA = flags.DEFINE_float(
    "ldp_noise_multiplier", None, "Enable latent local DP with this noise multiplier (privacy.latent_ldp)."
)
_LDP_BOUND = flags.DEFINE_float("ldp_l2_bound", 1.0, "Latent L2 clipping bound C for local DP.")
_REDACT = flags.DEFINE_enum(
    "redact_faces", "fill", ["none", *face_redaction.METHODS], "Redact faces before encoding (default)."
)
_REALTIME = flags.DEFINE_bool("realtime", True, "Pace a file source at --fps in wall-clock time.")
_MAX_UNACKED = flags.DEFINE_integer("max_unacked", 16, "Frames in flight before waiting (files) or dropping.")
_MAX_RETRIES = flags.DEFINE_integer("max_retries", 5, "Resends of a frame the server failed to process.")
_DRAIN = flags.DEFINE_float("drain_timeout_s", 60.0, "How long to wait for the last answers at the end.")
_QUIET = flags.DEFINE_bool("quiet", False, "Print alerts and errors only.")
_LOG_JSONL = flags.DEFINE_string("log_jsonl", None, "Also append every response to this JSON-lines file.")
_CACHE = flags.DEFINE_string("compilation_cache_dir", "runs/xla_cache", "Persistent XLA cache; '' disables.")


def main(argv):
    del argv
    compilation_cache.enable(_CACHE.value)
    encoder = camera_encoder.CameraEncoder(
        _EXPORT.value,
        quantize=_QUANTIZE.value,
        ldp_noise_multiplier=_LDP_SIGMA.value,
        ldp_l2_bound=_LDP_BOUND.value,
        redactor=None if _REDACT.value == "none" else face_redaction.FaceRedactor(_REDACT.value),
    )
    if encoder.ldp is not None:
        print(json.dumps({"latent_ldp": encoder.ldp_epsilon}), flush=True)
    log_file = open(_LOG_JSONL.value, "a") if _LOG_JSONL.value else None
    try:
        client = camera_client.CameraClient(
            server=_SERVER.value,
            certs_dir=_CERTS.value,
            camera_id=_CAMERA.value,
            max_unacked=_MAX_UNACKED.value,
            max_retries=_MAX_RETRIES.value,
            mechanism=encoder.mechanism,
            on_response=camera_client.response_printer(log_file, quiet=_QUIET.value),
        )
        summary = camera_client.run_camera(
            source=_SOURCE.value, encoder=encoder, client=client, fps=_FPS.value,
            max_frames=_MAX_FRAMES.value, realtime=_REALTIME.value, drain_timeout_s=_DRAIN.value,
        )  # fmt: skip
    finally:
        if log_file is not None:
            log_file.close()
    summary["faces_redacted"] = encoder.faces_redacted
    print(json.dumps({"event": "camera_done", **summary}), flush=True)
    if summary["unanswered"]:
        print(f"{summary['unanswered']} frame(s) were never answered: is the server up?", file=sys.stderr)
        sys.exit(3)
    if summary["lost"]:
        print(
            f"{summary['lost']} frame(s) were lost (not scored), e.g. frames {summary['lost_frames']}; "
            f"by error code {summary['lost_codes']}",
            file=sys.stderr,
        )
        sys.exit(4)


if __name__ == "__main__":
    app.run(main)
