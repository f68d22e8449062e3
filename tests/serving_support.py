"""Shared pieces of the serving tests: a tiny autoencoder export, a clip, configs, processes."""

import contextlib
import os
import pathlib
import queue
import socket

import grpc
import numpy as np

from configs import serve as serve_config
from ppvad_jax.data import video_io
from ppvad_jax.models import autoencoder_io
from ppvad_jax.serving import server as server_lib
from ppvad_jax.serving import server_process as server_process_lib
from ppvad_jax.serving import service, tls, wire

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY_FEATURES = (8, 8, 4)
TINY_SIZE = (64, 96)


def free_port():
    """A TCP port free on 127.0.0.1 now (for a child process to listen on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_export(out_dir):
    """A random-init narrow autoencoder at 64x96 (latent 8x12x4), exported like a trained one."""
    height, width = TINY_SIZE
    params = autoencoder_io.random_params(height=height, width=width, features=TINY_FEATURES)
    return autoencoder_io.export(out_dir, params, height=height, width=width, features=TINY_FEATURES)


def write_clip(path, *, num_frames=20, size=(120, 160), fps=10.0):
    """A textured background with a bright square crossing it (lossless FFV1)."""
    rng = np.random.default_rng(0)
    height, width = size
    background = rng.integers(40, 120, (height, width, 3), dtype=np.uint8)
    frames = []
    for t in range(num_frames):
        frame = background.copy()
        x = int(10 + t * (width - 40) / max(1, num_frames - 1))
        frame[40:70, x : x + 24] = (230, 200, 60)
        frames.append(frame)
    video_io.write_video(path, frames, fps=fps)
    return path


def config(export_dir, **overrides):
    """The runlocal server config on the tiny export; a scorer that makes every frame anomalous."""
    cfg = serve_config.get_config("runlocal=True")
    cfg.ae_export = str(export_dir)
    cfg.host = "127.0.0.1"
    cfg.engine.max_batch = 4
    cfg.engine.flow_threads = 1
    cfg.engine.max_queue_delay_s = 60.0  # a loaded CI machine must not turn these tests into drop tests
    cfg.scorer.name = "motion_energy"  # the fallback scorer: no classifier to train in a test
    cfg.scorer.midpoint = -1.0  # confidence >= sigmoid(4) = 0.98: an alert opens at the 4th frame
    cfg.log_every_s = 0.0
    cfg.store.synchronous = "NORMAL"
    for key, value in overrides.items():
        node = cfg
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return cfg


@contextlib.contextmanager
def in_process_world(root, cameras, **overrides):
    """One in-process server on a fresh PKI for ``cameras`` and the tiny export (``config``'s
    overrides applied): ``{"root", "certs", "export", "server"}``, shut down on exit."""
    certs = tls.make_development_pki(root / "certs", cameras)
    export = make_tiny_export(root / "ae")
    cfg = config(export, **overrides)
    srv = server_lib.AnalysisServer(cfg, certs_dir=certs, db_path=root / "alerts.sqlite", port=0).start()
    try:
        yield {"root": root, "certs": certs, "export": export, "server": srv}
    finally:
        srv.shutdown(grace_s=5)


def env():
    """Subprocess environment: the repo on the path, CPU, the tests' compilation cache."""
    cache = ROOT / ".pytest_cache" / "xla"
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def config_flags(export_dir):
    """``launch.serve`` overrides matching ``config()``."""
    return [
        "--config=configs/serve.py:runlocal=True", f"--config.ae_export={export_dir}",
        "--config.host=127.0.0.1", "--config.engine.max_batch=4", "--config.engine.flow_threads=1",
        "--config.scorer.name=motion_energy", "--config.scorer.midpoint=-1.0",
        "--config.log_every_s=0", "--config.store.synchronous=NORMAL",
        "--config.engine.max_queue_delay_s=60",
    ]  # fmt: skip


def server_process(*, export_dir, certs_dir, db, port=0, timeout=180.0):
    """``launch.serve`` in a child process with ``config()``'s settings."""
    return server_process_lib.ServerProcess(
        certs_dir=certs_dir, db=db, config_flags=config_flags(export_dir), port=port, env=env(),
        timeout=timeout,
    )  # fmt: skip


def raw_stream(port, credentials, *, timeout=60.0, options=()):
    """A bare stream: ``(send(bytes), responses, end())`` for sending malformed messages.

    ``timeout`` is the call's deadline: a test waiting on a stream the server never ends fails
    with DEADLINE_EXCEEDED instead of hanging the suite. ``options`` are channel options (a
    hostile camera's, e.g. ``("grpc.http2.bdp_probe", 0)`` keeps its receive window small)."""
    channel = grpc.secure_channel(f"localhost:{port}", credentials, options=list(options))
    outgoing = queue.Queue()

    def requests():
        while (item := outgoing.get()) is not None:
            yield item

    call = channel.stream_stream(
        service.FULL_METHOD, request_serializer=lambda b: b, response_deserializer=wire.decode_response
    )
    responses = call(requests(), timeout=timeout)
    return outgoing.put, responses, lambda: (outgoing.put(None), channel.close())
