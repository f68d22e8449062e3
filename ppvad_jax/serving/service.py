"""The gRPC side of the server: mutual TLS, one bidirectional stream per camera.

No generated code: one generic handler for ``/ppvad.v1.Analysis/StreamFrames``
with ``wire`` doing the (de)serialisation. The request deserializer never
raises (a parse failure becomes a ``wire.WireError`` value), because gRPC
ends a stream whose deserializer raises; here a malformed message only earns
an error response and the stream goes on.

Per stream: the camera id is the CN of the verified client certificate
(``tls.peer_common_name``); an unknown one is refused with PERMISSION_DENIED.
A reader thread parses, validates and queues each frame; the handler yields
responses as the engine (or the reader, for rejections) produces them. A
second stream from the same camera supersedes the first (the first is
closed): after a network fault the camera's new connection may arrive
before the server notices the old one is dead.

The stream ends when the camera half-closes and every frame it sent has been
answered, or, on shutdown, with status UNAVAILABLE once the engine has
drained (the camera reconnects to the next server).
"""

import dataclasses
import logging
import queue
import threading
from concurrent import futures

import grpc

from ppvad_jax.serving import engine as engine_lib
from ppvad_jax.serving import tls, validation, wire

log = logging.getLogger(__name__)

SERVICE = "ppvad.v1.Analysis"
METHOD = "StreamFrames"
FULL_METHOD = f"/{SERVICE}/{METHOD}"
_CLOSE = object()  # ends a stream (superseded or shutting down)
_WAKE = object()  # makes the handler re-check whether the stream is finished


def parse_request(data):
    """gRPC request deserializer: a ``wire.FrameMessage`` or a ``wire.WireError``, never raises."""
    try:
        return wire.decode_frame(data)
    except wire.WireError as e:
        return e


class Session:
    """One camera's stream: its outgoing responses and its count of unanswered frames."""

    def __init__(self, camera_id):
        self.camera_id = camera_id
        self.out = queue.Queue()
        self.closed = threading.Event()
        self.shutting_down = False
        self.reader_done = threading.Event()
        self._lock = threading.Lock()
        self._outstanding = 0

    def reserve(self):
        with self._lock:
            self._outstanding += 1

    def deliver(self, response):
        """Called by the engine with the answer to a frame this session queued."""
        self.out.put(response)
        with self._lock:
            self._outstanding -= 1

    def release(self):
        """Un-reserves a frame the engine did not queue."""
        with self._lock:
            self._outstanding -= 1

    def finished(self):
        with self._lock:
            idle = self._outstanding == 0
        return self.reader_done.is_set() and idle and self.out.empty()

    def close(self, *, shutting_down=False):
        self.shutting_down = shutting_down
        self.closed.set()
        self.out.put(_CLOSE)


@dataclasses.dataclass(frozen=True)
class ServiceOptions:
    known_cameras: tuple
    limits: validation.Limits


class AnalysisService:
    """The servicer: sessions, authentication, validation, hand-off to the engine."""

    def __init__(self, engine, options):
        self.engine = engine
        self.options = options
        self._sessions = {}
        self._lock = threading.Lock()
        self._closing = False

    def handler(self):
        method = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=parse_request, response_serializer=wire.encode_response
        )
        return grpc.method_handlers_generic_handler(SERVICE, {METHOD: method})

    def sessions(self):
        with self._lock:
            return dict(self._sessions)

    def close_sessions(self):
        """Ends every stream with UNAVAILABLE after its queued answers (call after the engine drained)."""
        with self._lock:
            self._closing = True
            sessions = list(self._sessions.values())
        for session in sessions:
            session.close(shutting_down=True)

    def _open(self, camera_id):
        session = Session(camera_id)
        with self._lock:
            old = self._sessions.get(camera_id)
            self._sessions[camera_id] = session
        if old is not None:
            log.info("camera %s reconnected: closing its previous stream", camera_id)
            old.close()
        self.engine.claim(camera_id)
        return session

    def _forget(self, session):
        with self._lock:
            if self._sessions.get(session.camera_id) is session:
                del self._sessions[session.camera_id]

    def _stream(self, request_iterator, context):
        camera_id = tls.peer_common_name(context)
        if camera_id is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a verified client certificate is required")
        if camera_id not in self.options.known_cameras:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"camera {camera_id!r} is not known here")
        if self._closing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down; reconnect later")
        session = self._open(camera_id)
        reader = threading.Thread(
            target=self._read, args=(session, request_iterator), name=f"reader-{camera_id}", daemon=True
        )
        reader.start()
        try:
            while True:
                try:
                    item = session.out.get(timeout=0.25)
                except queue.Empty:
                    if not context.is_active() or session.finished():
                        return
                    continue
                if item is _CLOSE:
                    if session.shutting_down:
                        context.set_code(grpc.StatusCode.UNAVAILABLE)
                        context.set_details("server is shutting down; reconnect and resend unanswered frames")
                    return
                if item is not _WAKE:
                    yield item
                if session.finished():
                    return
        finally:
            self._forget(session)

    def _read(self, session, request_iterator):
        try:
            for parsed in request_iterator:
                if session.closed.is_set():
                    break
                response = self._handle(session, parsed)
                if response is not None:
                    session.out.put(response)
        except Exception as e:  # the camera went away or cancelled: nothing to answer
            log.debug("stream of %s ended: %s", session.camera_id, e)
        finally:
            session.reader_done.set()
            session.out.put(_WAKE)

    def _handle(self, session, parsed):
        if isinstance(parsed, wire.WireError):
            self.engine.stats[f"error_{parsed.code}"] += 1
            camera_id = session.camera_id
            return wire.make_response("error", code=parsed.code, message=str(parsed), camera_id=camera_id)
        try:
            latent = validation.validate_frame(
                parsed,
                peer_camera_id=session.camera_id,
                known_cameras=self.options.known_cameras,
                limits=self.options.limits,
            )
        except validation.RejectedFrame as e:
            self.engine.stats[f"error_{e.code}"] += 1
            return wire.make_response(
                "error", code=e.code, message=str(e), camera_id=session.camera_id,
                run_id=parsed.run_id, frame_index=parsed.frame_index,
            )  # fmt: skip
        session.reserve()
        immediate = self.engine.submit(engine_lib.Request(session=session, message=parsed, latent=latent))
        if immediate is not None:
            session.release()
        return immediate


def grpc_server(service, credentials, *, address, max_streams):
    """A started ``grpc.Server`` bound to ``address`` with mutual TLS; returns ``(server, port)``."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_streams + 4, thread_name_prefix="grpc"),
        handlers=[service.handler()],
        maximum_concurrent_rpcs=max_streams,
        options=[
            # Our own byte limit answers a too-large frame with an error and keeps the stream;
            # gRPC's hard cap (4x ours) ends the stream for anything larger still.
            ("grpc.max_receive_message_length", 4 * service.options.limits.max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port fails instead of sharing it
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port
