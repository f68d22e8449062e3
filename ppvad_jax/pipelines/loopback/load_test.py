"""Loopback load test: N simulated cameras from real video files against one server process.

The server is ``launch.serve`` in its own process (``configs/serve.py:runlocal=True``
plus ``server_flags``). Each camera's frames are read from its own video at ``fps``
and encoded *before* the timed phase, so the cameras' CPU work does not compete
with the server's (a deployment's cameras are separate devices); the timed phase
then streams them at ``fps`` in real time over mutual TLS, bounded by ``seconds``
and ``max_frames``.

Reported: sustained answered frames/s, latency (send to answer, at the camera)
p50/p99, frames dropped by back-pressure, the server's own time split (decode,
flow, score, commit; mean batch), and bytes per frame on the wire: latent
float16 / int8 (whole messages) against JPEG (quality 90) and raw RGB.
"""

import dataclasses
import os
import platform
import tempfile
import threading
import time

import cv2
import numpy as np

from ppvad_jax.pipelines.loopback import cameras
from ppvad_jax.serving import camera_client, camera_encoder, quantization, server_process, wire


@dataclasses.dataclass(frozen=True)
class LoadTestSettings:
    """The flags of ``launch.load_test``."""

    cameras: int  # simulated cameras
    fps: float  # frames per second per camera
    seconds: float  # length of the timed phase
    max_frames: int  # frames per camera at most
    ae_export: str  # the autoencoder export the cameras encode with
    videos: str  # glob of source videos (looped)
    quantize: str  # wire format streamed: float16 | int8 | float32
    server_flags: tuple[str, ...]  # extra launch.serve flags, e.g. --config.x=y
    workdir: str | None  # certificates and the store; None: a temp dir


@dataclasses.dataclass(frozen=True)
class _Clips:
    """Every camera's frames, encoded before the timed phase."""

    frames_per_camera: int
    latents: dict[str, list]  # camera -> (array, scale) per frame
    wire_sizes: dict[str, float]  # mean bytes per frame of each format


@dataclasses.dataclass(frozen=True)
class _Streamed:
    """The timed phase: the clients (their stats and latencies) and its clocks."""

    clients: dict[str, camera_client.CameraClient]
    sending_s: float
    unanswered: int
    elapsed_s: float


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


def _encode_clips(encoder, videos, camera_ids, settings) -> _Clips:
    """Each camera's clip, read and encoded; a video shared by several cameras is encoded once."""
    n = int(min(settings.max_frames, settings.seconds * settings.fps))
    # Cameras beyond the number of videos replay a video another camera has: each video is read
    # and encoded once (32 cameras would otherwise encode 32 x n frames on the CPU first).
    sources = [videos[i % len(videos)] for i in range(len(camera_ids))]
    clips = {
        path: cameras.looped_frames(path, fps=settings.fps, size=encoder.size, num_frames=n)
        for path in dict.fromkeys(sources)
    }
    encoded = {
        path: [encoder.encode(f, frame_index=i) for i, f in enumerate(frames)]
        for path, frames in clips.items()
    }
    latents = {cam: encoded[path] for cam, path in zip(camera_ids, sources, strict=True)}
    return _Clips(n, latents, _bytes_per_frame(encoder, clips[sources[0]]))


def _server_env(server_platforms):
    """The server's environment: the JAX platforms the launcher was started with, not the
    cameras' "cpu"."""
    env = server_process.child_env()
    env.pop("JAX_PLATFORMS", None)
    if server_platforms is not None:
        env["JAX_PLATFORMS"] = server_platforms
    return env


def _stream(client, latents, fps, deadline):
    start = time.monotonic()
    for i, (array, scale) in enumerate(latents):
        wait = start + i / fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() > deadline:
            break
        client.send(frame_index=i, timestamp=time.time(), latent=array, scale=scale, block=False)


def _stream_all(port, certs_dir, latents, settings) -> _Streamed:
    """One client per camera, all streaming at ``fps`` in their own thread until the deadline."""
    clients = {
        cam: camera_client.CameraClient(server=f"localhost:{port}", certs_dir=certs_dir, camera_id=cam)
        for cam in latents
    }
    start = time.monotonic()
    deadline = start + settings.seconds
    threads = [
        threading.Thread(target=_stream, args=(clients[cam], latents[cam], settings.fps, deadline))
        for cam in latents
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sending_s = time.monotonic() - start
    unanswered = sum(c.close(timeout=30.0) for c in clients.values())
    return _Streamed(clients, sending_s, unanswered, time.monotonic() - start)


def _result(settings, encoder, clips: _Clips, streamed: _Streamed, server, stopped) -> dict:
    clients = streamed.clients.values()
    latencies = np.concatenate([c.latencies_ms for c in clients] or [[]])
    answered = int(sum(c.stats["ok"] for c in clients))
    sent = int(sum(c.stats["sent"] for c in clients))
    dropped = int(sum(c.stats["overloaded"] + c.stats["dropped_backpressure"] for c in clients))
    dropped += int(sum(c.stats["dropped_window"] for c in clients))
    n = clips.frames_per_camera
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "server_devices": server.listening.get("devices"),
        "cameras": settings.cameras,
        "fps_per_camera": settings.fps,
        "frame_shape": list(encoder.frame_shape),
        "latent_shape": list(encoder.latent_shape),
        "quantize": settings.quantize,
        "offered_frames_per_s": round(settings.cameras * settings.fps, 2),
        "sustained_frames_per_s": round(answered / streamed.sending_s, 2),
        "frames_offered": settings.cameras * n,
        "frames_sent": sent,
        "frames_answered": answered,
        "frames_dropped": dropped,
        "unanswered_at_end": streamed.unanswered,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies.size else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 1) if latencies.size else None,
        "seconds_sending": round(streamed.sending_s, 2),
        "seconds_total": round(streamed.elapsed_s, 2),
        "bytes_per_frame": clips.wire_sizes,
        "server": {k: v for k, v in stopped.items() if k != "event"},
        "meets_target": bool(answered >= 0.95 * settings.cameras * n and dropped == 0),
    }


def run(settings: LoadTestSettings, *, server_platforms: str | None) -> dict:
    """Runs the load test (module docstring) and returns its JSON report.

    Args:
      settings: the launcher's flags.
      server_platforms: ``JAX_PLATFORMS`` for the server process (None: JAX's default); this
        process, the cameras, runs on the CPU.

    Raises:
      cameras.NoVideoError: no video matches ``settings.videos``.
    """
    workdir = settings.workdir or tempfile.mkdtemp(prefix="load_test_")
    camera_ids = cameras.camera_ids(settings.cameras)
    certs_dir = os.path.join(workdir, "certs")
    cameras.make_pki(certs_dir, camera_ids)
    videos = cameras.source_videos(settings.videos)
    encoder = camera_encoder.CameraEncoder(settings.ae_export, quantize=settings.quantize)
    clips = _encode_clips(encoder, videos, camera_ids, settings)
    server = server_process.ServerProcess(
        certs_dir=certs_dir,
        db=os.path.join(workdir, "alerts.sqlite"),
        config_flags=["--config=configs/serve.py:runlocal=True", f"--config.ae_export={settings.ae_export}"]
        + list(settings.server_flags),
        env=_server_env(server_platforms),
    )
    try:
        streamed = _stream_all(server.port, certs_dir, clips.latents, settings)
    finally:
        server.terminate()
    stopped = server.wait_for("stopped", 30)
    return _result(settings, encoder, clips, streamed, server, stopped)
