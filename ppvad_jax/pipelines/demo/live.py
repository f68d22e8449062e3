"""Stage 7: the demo's site live for a few seconds, so the operator console has something to show.

The real analysis server (``serving.server``, in this process, on loopback) decodes and scores
with the demo's autoencoder and classifier; ``config.live_cameras`` cameras (``serving``'s own
camera encoder and client, the camera's face redaction included) stream test videos of the world
in real time over mutual TLS. The store, a throwaway PKI with the console's certificate and two
console accounts (an operator and a viewer, random passwords in ``console_credentials.txt``,
0600) are left in ``WORKDIR/live`` for ``python -m launch.console``. ``--serve_console``
(``launch/demo.sh --serve``) then keeps the site up: the cameras stream their videos in a loop
and the console serves the store in this process, until Ctrl-C.
"""

import contextlib
import dataclasses
import pathlib
import secrets
import shutil
import threading

from ppvad_jax.models import face_redaction
from ppvad_jax.pipelines.demo import outputs
from ppvad_jax.serving import camera_client, camera_encoder, camera_source, server, tls
from ppvad_jax.serving.console import accounts


@dataclasses.dataclass(frozen=True)
class Live:
    workdir: pathlib.Path
    db: pathlib.Path
    certs: pathlib.Path
    users: pathlib.Path
    credentials: pathlib.Path
    cameras: dict  # camera -> the videos it streamed
    frames: int  # frames scored in all
    alerts: int  # alerts in the store

    def console_command(self, port=8443):
        return (
            f"python -m launch.console --db={self.db} --certs_dir={self.certs} --users={self.users} "
            f"--config.port={port}"
        )


def _playlists(manifest, cameras):
    """Each camera's test videos: every camera gets a normal and an anomalous one (by turns)."""
    by_name = {v["name"]: v for v in manifest["videos"]}
    test = [by_name[n] for n in manifest["test"] if n in by_name]
    normal = [v for v in test if v["class"] == "Normal"]
    anomalous = [v for v in test if v["class"] != "Normal"]
    if not normal or not anomalous:
        raise ValueError("the world's test split needs a normal and an anomalous video for the live stage")
    playlists = {}
    for i in range(cameras):
        pair = [normal[i % len(normal)]["path"], anomalous[i % len(anomalous)]["path"]]
        playlists[f"cam{i + 1}"] = pair if i % 2 == 0 else pair[::-1]
    return playlists


def _server_config(config, ae_dir, cls_dir):
    """``config.base.serve`` (runlocal) on the demo's autoencoder and classifier."""
    cfg = outputs.fresh(config.base.serve)
    cfg.ae_export = str(pathlib.Path(ae_dir) / "export")
    cfg.scorer.export_dir = str(pathlib.Path(cls_dir) / "export")
    cfg.engine.max_batch = 2  # two cameras at 10 frames/s; fewer buckets to compile
    cfg.log_every_s = 0.0
    return cfg


def _stream(client, encoder, videos, root, fps, stop=None):
    """Streams the videos in real time, once, or round and round until ``stop`` is set."""
    index = 0
    while True:
        for video in videos:
            for timestamp, frame in camera_source.frames_at_rate(
                str(root / video), fps=fps, size=encoder.size
            ):
                if stop is not None and stop.is_set():
                    return client.close(timeout=60)
                latent, scale = encoder.encode(frame, frame_index=index)
                client.send(frame_index=index, timestamp=timestamp, latent=latent, scale=scale)
                index += 1
        if stop is None:
            return client.close(timeout=60)


@contextlib.contextmanager
def _streaming(config, site, root, ae_dir, cls_dir, stop=None):
    """The analysis server on ``site``'s store and one camera thread per playlist; on exit the
    cameras stop (``stop`` is set) or finish, then the server drains and stops."""
    cfg = _server_config(config, ae_dir, cls_dir)
    srv = server.AnalysisServer(cfg, certs_dir=site.certs, db_path=site.db, port=0).start()
    threads = []
    try:
        for camera, videos in site.cameras.items():
            encoder = camera_encoder.CameraEncoder(
                cfg.ae_export, redactor=face_redaction.from_spec(config.camera_redaction)
            )
            client = camera_client.CameraClient(
                server=f"localhost:{srv.port}",
                certs_dir=site.certs,
                camera_id=camera,
                mechanism=encoder.mechanism,
            )
            threads.append(threading.Thread(target=_stream, args=(client, encoder, videos, root, 10.0, stop)))
            threads[-1].start()
        yield srv, threads
    finally:
        if stop is not None:
            stop.set()
        for t in threads:
            t.join()
        srv.shutdown(grace_s=5)


def _accounts(live):
    """An operator and a viewer with fresh random passwords, written 0600 beside the store."""
    users, credentials = live / "console_users.json", live / "console_credentials.txt"
    book = accounts.Accounts(users)
    lines = []
    for name, role in (("operator", "operator"), ("viewer", "viewer")):
        password = secrets.token_urlsafe(12)
        book.add(name, password, role)
        lines.append(f"{name} ({role}): {password}\n")
    accounts.write_private(credentials, "".join(lines))
    return users, credentials


def run(config, workdir, world, ae_dir, cls_dir):
    """A new site in ``WORKDIR/live``; every camera streams its playlist once; returns ``Live``."""
    live = pathlib.Path(workdir) / "live"
    shutil.rmtree(live, ignore_errors=True)  # a new site each demo: its own CA, store, accounts
    playlists = _playlists(world.manifest, config.live_cameras)
    print(f"[7] live site: {len(playlists)} cameras stream test videos through the server -> {live}")
    certs = tls.make_development_pki(live / "certs", list(playlists))
    tls.add_console(certs, ["localhost", "127.0.0.1"])
    users, credentials = _accounts(live)
    site = Live(live, live / "alerts.sqlite", certs, users, credentials, playlists, 0, 0)
    with _streaming(config, site, world.root, ae_dir, cls_dir) as (srv, threads):
        for t in threads:
            t.join()
        frames, alerts = srv.engine.stats["frames"], len(srv.store.list_alerts())
    return dataclasses.replace(site, frames=frames, alerts=alerts)


def serve_console(config, site, world, ae_dir, cls_dir):
    """``--serve_console``: the site's cameras stream round and round through the server while
    the console serves its store, until Ctrl-C."""
    from ppvad_jax.serving import alert_store  # noqa: PLC0415
    from ppvad_jax.serving.console import app  # noqa: PLC0415

    port = config.console_port
    with _streaming(config, site, world.root, ae_dir, cls_dir, stop=threading.Event()):
        print(f"console: https://localhost:{port}/ (accounts in {site.credentials}); the cameras stream "
              "their test videos in a loop; Ctrl-C stops it all", flush=True)  # fmt: skip
        store = alert_store.SqliteAlertStore(site.db)
        try:
            app.serve(store, site.users, site.certs, port=port, timeline_minutes=2.0)
        finally:
            store.close()
