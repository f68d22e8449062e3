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

Memory per stream is bounded: every message costs one of
``max_replies`` reply slots, taken before the message is read and given back
once its answer has been handed to gRPC. A camera that sends without reading
its answers therefore stops being read (HTTP/2 flow control then stalls its
sends), and after ``stall_timeout_s`` without a free slot while answers wait
unsent its stream is ended with RESOURCE_EXHAUSTED (slots held by frames still
in the engine are the server's delay and never end a stream). Before, its
answers queued without limit (94 MB for 300,000 junk messages in 32 s). Cost:
one semaphore operation per message.

Access: a camera must be in ``known_cameras`` and its
certificate's serial must not be in ``revoked_serials`` (the CRL
``launch.make_certs --revoke`` writes). ``update_access`` swaps both while
streams run and ends only the streams they no longer admit, with
PERMISSION_DENIED.
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

    def __init__(self, camera_id, *, serial=None, max_replies=64):
        self.camera_id = camera_id
        self.serial = serial  # of the client certificate, for revocation
        self.out = queue.Queue()  # at most max_replies answers: see the slots
        self.closed = threading.Event()
        self.shutting_down = False
        self.close_status = None  # (grpc.StatusCode, details) the stream ends with, if any
        self.reader_done = threading.Event()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._slots = threading.Semaphore(max_replies)
        self.max_replies = max_replies

    def take_slot(self, timeout):
        """A reply slot for the next message; False if none came free in ``timeout`` seconds."""
        return self._slots.acquire(timeout=timeout)

    def give_slot(self):
        self._slots.release()

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

    def close(self, *, shutting_down=False, status=None):
        self.shutting_down = shutting_down
        if status is not None:
            self.close_status = status
        self.closed.set()
        self.out.put(_CLOSE)


@dataclasses.dataclass(frozen=True)
class ServiceOptions:
    known_cameras: tuple
    limits: validation.Limits
    revoked_serials: frozenset = frozenset()  # client certificate serials refused (the CRL)
    max_replies: int = 64  # answers queued per stream before the stream stops being read
    stall_timeout_s: float = 10.0  # no reply slot for this long: RESOURCE_EXHAUSTED


def _end_call(context, code, details):
    """Ends a call from a thread other than its handler's with ``code``.

    ``context.abort`` only works on the handler's thread, which is the one blocked sending to a
    camera that does not read. The C call's cancel takes a status code; if this gRPC build's
    internals differ, a plain ``cancel()`` (CANCELLED) still ends the stream."""
    context.set_code(code)
    context.set_details(details)
    try:
        context._rpc_event.call.cancel(code.value[0], details)  # noqa: SLF001
    except Exception:  # internals moved: the status is CANCELLED instead
        context.cancel()


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

    def admits(self, camera_id, serial):
        """None if this camera and certificate may stream, else why not."""
        options = self.options
        if camera_id not in options.known_cameras:
            return f"camera {camera_id!r} is not known here"
        if serial is not None and serial in options.revoked_serials:
            return f"the certificate of camera {camera_id!r} (serial {serial:x}) is revoked"
        return None

    def update_access(self, *, known_cameras, revoked_serials):
        """New camera list and CRL; ends only the streams they no longer admit. Returns those ids."""
        with self._lock:
            self.options = dataclasses.replace(
                self.options, known_cameras=tuple(known_cameras), revoked_serials=frozenset(revoked_serials)
            )
            sessions = list(self._sessions.values())
        ended = []
        for session in sessions:
            reason = self.admits(session.camera_id, session.serial)
            if reason is not None:
                log.warning("ending the stream of %s: %s", session.camera_id, reason)
                session.close(status=(grpc.StatusCode.PERMISSION_DENIED, reason))
                ended.append(session.camera_id)
        return ended

    def _open(self, camera_id, serial):
        session = Session(camera_id, serial=serial, max_replies=self.options.max_replies)
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
        serial = tls.peer_serial(context)
        refused = self.admits(camera_id, serial)
        if refused is not None:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)
        if self._closing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down; reconnect later")
        session = self._open(camera_id, serial)
        reader = threading.Thread(
            target=self._read, args=(session, request_iterator, context), name=f"reader-{camera_id}",
            daemon=True,
        )  # fmt: skip
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
                    if session.close_status is not None:
                        context.set_code(session.close_status[0])
                        context.set_details(session.close_status[1])
                    elif session.shutting_down:
                        context.set_code(grpc.StatusCode.UNAVAILABLE)
                        context.set_details("server is shutting down; reconnect and resend unanswered frames")
                    return
                if item is not _WAKE:
                    yield item
                    session.give_slot()  # gRPC has taken the answer: the camera reads
                if session.finished():
                    return
        finally:
            self._forget(session)

    def _read(self, session, request_iterator, context):
        iterator = iter(request_iterator)
        try:
            while not session.closed.is_set():
                if not self._wait_for_slot(session):
                    if not session.closed.is_set():
                        self._stalled(session, context)
                    break
                try:
                    parsed = next(iterator)
                except StopIteration:
                    session.give_slot()
                    break
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

    def _wait_for_slot(self, session):
        """A reply slot, or False once the camera has left answers unread for stall_timeout_s.

        Slots held by frames still in the engine are the server's own delay, not the camera's:
        while no answer waits to be sent, the wait goes on (the engine bounds those frames by
        ``max_pending_per_camera`` and ``max_queue_delay_s``). Only a full send queue counts."""
        while not session.take_slot(self.options.stall_timeout_s):
            if session.closed.is_set() or not session.out.empty():
                return False
        return True

    def _stalled(self, session, context):
        details = (
            f"camera {session.camera_id} left {session.max_replies} answers unread for "
            f"{self.options.stall_timeout_s:g} s: stream closed (read the answers while sending)"
        )
        log.warning("%s", details)
        self.engine.stats["streams_exhausted"] += 1
        session.close(status=(grpc.StatusCode.RESOURCE_EXHAUSTED, details))
        _end_call(context, grpc.StatusCode.RESOURCE_EXHAUSTED, details)

    def handle_bytes(self, session, data):
        """What the stream does with one untrusted message: parse (``parse_request``, gRPC's
        deserializer), validate, queue. Returns the immediate response, or None once queued.
        The entry point of the fuzz tests (tests/test_fuzz_wire.py): for any bytes it must
        return None or an error with a named, final code, and never raise."""
        return self._handle(session, parse_request(data))

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
