"""Loopback load test: N simulated cameras from real video files against one server; prints JSON.

  python -m launch.load_test --cameras=2 --fps=10 --seconds=30 \
      --ae_export=runs/demo/autoencoder_dpadam/export --videos='runs/demo/world/*/*.avi'

The server is ``launch.serve`` in its own process (``configs/serve.py:runlocal=True``
plus ``--server_flag`` overrides). Each camera's frames are read from its own
video at ``--fps`` and encoded *before* the timed phase, so the cameras' CPU
work does not compete with the server's (a deployment's cameras are separate
devices); the timed phase then streams them at ``--fps`` in real time over
mutual TLS, bounded by ``--seconds`` and ``--max_frames``.

Reported: sustained answered frames/s, latency (send to answer, at the
camera) p50/p99, frames dropped by back-pressure, the server's own time split
(decode, flow, score, commit; mean batch), and bytes per frame on the wire:
latent float16 / int8 (whole messages) against JPEG (quality 90) and raw RGB.
"""

import glob
import json
import os
import platform
import tempfile
import threading
import time

# The simulated cameras encode on the CPU, as cameras do; the server, a child process, gets the
# platforms this process was started with (on a GPU machine it must not inherit "cpu").
_SERVER_PLATFORMS = os.environ.get("JAX_PLATFORMS")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from ppvad_jax.serving import (  # noqa: E402
    camera_client,
    camera_encoder,
    camera_source,
    quantization,
    server_process,
    tls,
    wire,
)

_CAMERAS = flags.DEFINE_integer("cameras", 2, "Simulated cameras.")
_FPS = flags.DEFINE_float("fps", 10.0, "Frames per second per camera.")
_SECONDS = flags.DEFINE_float("seconds", 30.0, "Length of the timed phase.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 600, "Frames per camera at most.")
_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export.")
_VIDEOS = flags.DEFINE_string("videos", "runs/demo/world/*/*.avi", "Glob of source videos (looped).")
_QUANTIZE = flags.DEFINE_enum("quantize", "float16", ["float16", "int8", "float32"], "Wire format streamed.")
_SERVER_FLAGS = flags.DEFINE_multi_string("server_flag", [], "Extra launch.serve flags, e.g. --config.x=y.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Certificates and the store go here (default: a temp dir).")


def _clip(path, encoder, n):
    """``n`` frames of ``path`` at the test's rate, looping the video."""
    frames = []
    while len(frames) < n:
        before = len(frames)
        for _, frame in camera_source.frames_at_rate(path, fps=_FPS.value, size=encoder.size, realtime=False):
            frames.append(frame)
            if len(frames) == n:
                break
        if len(frames) == before:
            raise ValueError(f"{path} has no frames")
    return frames


def _bytes_per_frame(encoder, frames):
    sizes = {"latent_float16": [], "latent_int8": [], "jpeg_q90": [], "raw_rgb": []}
    for i, frame in enumerate(frames[:50]):
        latent = encoder.latent(frame, frame_index=i)
        for mode in ("float16", "int8"):
            array, scale = quantization.quantize(latent, mode)
            message = wire.encode_frame(
                camera_id="cam1", run_id="0123456789abcdef", frame_index=i, timestamp=time.time(),
                latent=array, scale=scale,
            )  # fmt: skip
            sizes[f"latent_{mode}"].append(len(message))
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        _, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        sizes["jpeg_q90"].append(len(jpeg))
        sizes["raw_rgb"].append(frame.nbytes)
    return {k: round(float(np.mean(v)), 1) for k, v in sizes.items()}


def _stream(client, latents, fps, deadline):
    start = time.monotonic()
    for i, (array, scale) in enumerate(latents):
        wait = start + i / fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() > deadline:
            break
        client.send(frame_index=i, timestamp=time.time(), latent=array, scale=scale, block=False)


def main(argv):
    del argv
    workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="load_test_")
    cameras = [f"cam{i + 1}" for i in range(_CAMERAS.value)]
    # A throwaway PKI of this run's own: a rerun in the same --workdir replaces it.
    tls.make_development_pki(os.path.join(workdir, "certs"), cameras, force=True)
    videos = sorted(glob.glob(_VIDEOS.value))
    if not videos:
        raise app.UsageError(f"no video matches {_VIDEOS.value!r} (python -m launch.make_synthetic)")
    n = int(min(_MAX_FRAMES.value, _SECONDS.value * _FPS.value))
    encoder = camera_encoder.CameraEncoder(_EXPORT.value, quantize=_QUANTIZE.value)
    # Cameras beyond the number of videos replay a video another camera has: each video is read
    # and encoded once (32 cameras would otherwise encode 32 x n frames on the CPU first).
    sources = [videos[i % len(videos)] for i in range(len(cameras))]
    clips = {path: _clip(path, encoder, n) for path in dict.fromkeys(sources)}
    encoded = {
        path: [encoder.encode(f, frame_index=i) for i, f in enumerate(frames)]
        for path, frames in clips.items()
    }
    latents = {cam: encoded[path] for cam, path in zip(cameras, sources, strict=True)}
    wire_sizes = _bytes_per_frame(encoder, clips[sources[0]])

    server_env = server_process.child_env()
    server_env.pop("JAX_PLATFORMS")
    if _SERVER_PLATFORMS is not None:
        server_env["JAX_PLATFORMS"] = _SERVER_PLATFORMS
    server = server_process.ServerProcess(
        certs_dir=os.path.join(workdir, "certs"),
        db=os.path.join(workdir, "alerts.sqlite"),
        config_flags=["--config=configs/serve.py:runlocal=True", f"--config.ae_export={_EXPORT.value}"]
        + _SERVER_FLAGS.value,
        env=server_env,
    )
    try:
        clients = {
            cam: camera_client.CameraClient(
                server=f"localhost:{server.port}", certs_dir=os.path.join(workdir, "certs"), camera_id=cam
            )
            for cam in cameras
        }
        start = time.monotonic()
        deadline = start + _SECONDS.value
        threads = [
            threading.Thread(target=_stream, args=(clients[cam], latents[cam], _FPS.value, deadline))
            for cam in cameras
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sending_s = time.monotonic() - start
        unanswered = sum(c.close(timeout=30.0) for c in clients.values())
        elapsed = time.monotonic() - start
    finally:
        server.terminate()
    stopped = server.wait_for("stopped", 30)
    latencies = np.concatenate([c.latencies_ms for c in clients.values()] or [[]])
    answered = int(sum(c.stats["ok"] for c in clients.values()))
    sent = int(sum(c.stats["sent"] for c in clients.values()))
    dropped = int(sum(c.stats["overloaded"] + c.stats["dropped_backpressure"] for c in clients.values()))
    dropped += int(sum(c.stats["dropped_window"] for c in clients.values()))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "server_devices": server.listening.get("devices"),
        "cameras": len(cameras),
        "fps_per_camera": _FPS.value,
        "frame_shape": list(encoder.frame_shape),
        "latent_shape": list(encoder.latent_shape),
        "quantize": _QUANTIZE.value,
        "offered_frames_per_s": round(len(cameras) * _FPS.value, 2),
        "sustained_frames_per_s": round(answered / sending_s, 2),
        "frames_offered": len(cameras) * n,
        "frames_sent": sent,
        "frames_answered": answered,
        "frames_dropped": dropped,
        "unanswered_at_end": unanswered,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies.size else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 1) if latencies.size else None,
        "seconds_sending": round(sending_s, 2),
        "seconds_total": round(elapsed, 2),
        "bytes_per_frame": wire_sizes,
        "server": {k: v for k, v in stopped.items() if k != "event"},
        "meets_target": bool(answered >= 0.95 * len(cameras) * n and dropped == 0),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
