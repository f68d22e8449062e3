"""The analysis server assembled from ``configs/serve.py``: store, decoder, scorer, engine, gRPC.

``AnalysisServer.start`` loads the state of every camera from the store, compiles
every decoder bucket (so no camera waits for a compilation), then listens.
``shutdown`` is the graceful path (SIGTERM / SIGINT in ``launch.serve``):
refuse new frames, drain and commit the queued ones, answer them, end the
streams with UNAVAILABLE so cameras reconnect elsewhere, close the store.

``reload`` (SIGHUP in ``launch.serve``, and a poll of ``cameras.txt`` and
``crl.pem`` every ``config.reload_every_s``) re-reads the camera list and the
CRL while streams run: a revoked or removed camera's stream ends with
PERMISSION_DENIED, every other stream goes on. A CRL that does not verify
keeps the previous one (logged), never an empty one.
"""

import json
import logging
import os
import pathlib
import threading
import time

import jax

from ppvad_jax.serving import (
    alert_store,
    camera_state,
    decoding,
    engine,
    operator_store,
    scorer,
    service,
    tls,
    two_stream_scorer,  # noqa: F401  (registers the "two_stream" scorer)
    validation,
)

log = logging.getLogger(__name__)


def buckets_up_to(max_batch):
    """Powers of two below ``max_batch``, then ``max_batch`` itself."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return (*out, max_batch)


def known_cameras(config, certs_dir):
    listed = tuple(c.strip() for c in config.cameras.split(",") if c.strip())
    return listed or tls.known_cameras(certs_dir)


def _access_files_stamp(certs_dir):
    """(mtime_ns, size) of cameras.txt and crl.pem: a change means reload. Cost: two stat calls."""
    out = []
    for name in ("cameras.txt", "crl.pem"):
        try:
            st = os.stat(pathlib.Path(certs_dir) / name)
            out.append((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


class AnalysisServer:
    def __init__(self, config, *, certs_dir, db_path, port, host=None):
        self.config = config
        self.certs_dir = certs_dir
        self.address = f"{host or config.host}:{port}"
        self.store = alert_store.open_store(config.store, db_path)
        buckets = buckets_up_to(config.engine.max_batch)
        self.decoder = decoding.BucketedDecoder(config.ae_export, buckets=buckets)
        self.scorer = scorer.make_scorer(config.scorer)
        self.sas_params = camera_state.SasParams(**config.sas.to_dict())
        self.engine = None
        self.service = None
        self.server = None
        self.port = None
        self._stopped = threading.Event()
        self._reload_lock = threading.Lock()
        self._stamp = None

    def start(self):
        if self.config.warmup:
            t = time.monotonic()
            self.decoder.warmup()
            log.info("decoder compiled for buckets %s in %.1f s", self.decoder.buckets, time.monotonic() - t)
            t = time.monotonic()
            scorer.warmup(self.scorer, self.decoder.frame_shape, self.decoder.buckets)
            log.info("scorer %s warmed up in %.1f s", self.scorer.name, time.monotonic() - t)
        e = self.config.engine
        self.engine = engine.Engine(
            decoder=self.decoder,
            scorer=self.scorer,
            store=self.store,
            sas_params=self.sas_params,
            options=engine.EngineOptions(
                max_batch=e.max_batch, tick_s=e.tick_s, max_queue=e.max_queue,
                max_pending_per_camera=e.max_pending_per_camera, max_queue_delay_s=e.max_queue_delay_s,
                max_flow_gap=e.max_flow_gap, max_frame_attempts=e.max_frame_attempts,
                resend_hold_s=e.resend_hold_s,
                flow_method=e.flow_method, flow_bound=e.flow_bound, flow_threads=e.flow_threads,
            ),
        )  # fmt: skip
        # What the operator console shows beside the alerts: rates, thumbnails, the autoencoder.
        self.engine.live = operator_store.LiveRecorder(
            self.store,
            owner=self.engine.owner,
            autoencoder=operator_store.autoencoder_summary(self.config.ae_export),
        )
        lim = self.config.limits
        limits = validation.Limits(
            latent_shape=self.decoder.latent_shape,
            max_message_bytes=lim.max_message_bytes,
            max_abs_value=lim.max_abs_value,
            max_timestamp_age_s=lim.max_timestamp_age_s,
            max_timestamp_ahead_s=lim.max_timestamp_ahead_s,
        )
        self._stamp = _access_files_stamp(self.certs_dir)
        options = service.ServiceOptions(
            known_cameras=known_cameras(self.config, self.certs_dir),
            limits=limits,
            revoked_serials=tls.revoked_serials(self.certs_dir),
            max_replies=lim.max_replies_per_stream,
            stall_timeout_s=lim.stall_timeout_s,
        )
        self.service = service.AnalysisService(self.engine, options)
        self.server, self.port = service.grpc_server(
            self.service,
            tls.server_credentials(self.certs_dir),
            address=self.address,
            max_streams=self.config.max_streams,
        )
        log.info("listening on %s, port %d", self.address.rsplit(":", 1)[0], self.port)
        if self.config.reload_every_s > 0:
            threading.Thread(target=self._watch_access_files, name="reload-watch", daemon=True).start()
        return self

    def reload(self):
        """Re-reads the camera list and the CRL (module docstring). Returns what changed."""
        with self._reload_lock:
            self._stamp = _access_files_stamp(self.certs_dir)
            old = self.service.options
            try:
                cameras = known_cameras(self.config, self.certs_dir)
                revoked = tls.revoked_serials(self.certs_dir)
            except (OSError, ValueError) as e:
                log.error("reload refused, keeping the current camera list and CRL: %s", e)
                return {"event": "reload_failed", "error": str(e)}
            ended = self.service.update_access(known_cameras=cameras, revoked_serials=revoked)
        event = {
            "event": "reloaded",
            "cameras": list(cameras),
            "added": sorted(set(cameras) - set(old.known_cameras)),
            "revoked_serials": len(revoked),
            "streams_ended": ended,
        }
        log.info("%s", json.dumps(event))
        return event

    def _watch_access_files(self):
        while not self._stopped.wait(self.config.reload_every_s):
            if _access_files_stamp(self.certs_dir) != self._stamp:
                self.reload()

    def describe(self):
        """A JSON-able summary: where it listens and what it serves."""
        return {
            "event": "listening",
            "port": self.port,
            "address": f"{self.address.rsplit(':', 1)[0]}:{self.port}",
            "latent_shape": list(self.decoder.latent_shape),
            "frame_shape": list(self.decoder.frame_shape),
            "buckets": list(self.decoder.buckets),
            "scorer": self.scorer.name,
            "devices": [str(d) for d in jax.devices()],  # where the decoder and scorer run
            "cameras": list(self.service.options.known_cameras),
            "restored_cameras": sorted(self.store.load_states()),
        }

    def stats(self):
        stats = dict(self.engine.stats) if self.engine else {}
        ticks = stats.get("ticks", 0)
        if ticks:
            stats["mean_batch"] = round(stats.get("frames", 0) / ticks, 2)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}

    def shutdown(self, grace_s=None):
        """Graceful stop (module docstring). Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace_s = self.config.shutdown_grace_s if grace_s is None else grace_s
        if self.engine is not None:
            self.engine.close(timeout=grace_s)
        if self.service is not None:
            self.service.close_sessions()
        if self.server is not None:
            self.server.stop(grace_s).wait()
        self.store.close()
        log.info("stopped: %s", json.dumps(self.stats()))

    def wait(self):
        self._stopped.wait()
