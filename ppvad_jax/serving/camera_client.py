"""The camera's connection to the analysis server: one stream, resent frames, reconnects.

Delivery is at least once, made exactly once by the server: every frame stays
in an ``unacked`` window until a final response (ok, replayed, a final error,
or overloaded) comes back. A retryable error (``wire.is_retryable``: the
server's own failure, or "resend" behind one) keeps the frame in the window:
the client ends the stream and reconnects, resending the window in order, at
most ``max_retries`` times per frame (a "resend" answer, which only says an
earlier frame failed, does not count). Frames that got a final error, or ran
out of retries, are ``lost``: counted, listed, and ``launch.camera`` exits
non-zero for them. When the stream breaks (server restart, network),
the client reconnects with exponential backoff (``backoff_s`` doubling to
``max_backoff_s``, with jitter so that many cameras do not reconnect in
step) and first resends the whole window, in order; the server answers
frames it had already committed from its store ("replayed") without scoring
them twice. Frames answered "shutting_down" stay in the window and go out
again after the reconnect.

Flow control: at most ``max_unacked`` frames in flight. ``send(block=True)``
(file sources) waits for room; ``block=False`` (live sources) drops the frame
instead. An "overloaded" response means the server dropped the frame: the
client then drops new frames itself for the ``retry_after_ms`` the server
suggested, so an overloaded server sheds load at the cameras.

``run_id`` (random per client) tells the server that frame numbers restarted:
(camera, run, frame) is the server's dedup key.
"""

import collections
import json
import logging
import pathlib
import random
import secrets
import sys
import threading
import time

import grpc

from ppvad_jax.serving import service, tls, wire

log = logging.getLogger(__name__)
_END = object()
FINAL = ("ok", "replayed", "error", "overloaded")  # "error" only when not retryable


class _Connection:
    def __init__(self, pending):
        self.queue = collections.deque(pending)
        self.resending = len(self.queue)
        self.cond = threading.Condition()
        self.ended = False

    def put(self, item):
        with self.cond:
            self.queue.append(item)
            self.cond.notify()

    def end(self):
        self.put(_END)

    def requests(self):
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                item = self.queue.popleft()
            if item is _END:
                return
            yield item


class CameraClient:
    """Streams latents to the server; see the module docstring."""

    def __init__(
        self,
        *,
        server,
        certs_dir,
        camera_id,
        max_unacked=16,
        on_response=None,
        backoff_s=0.25,
        max_backoff_s=4.0,
        credentials=None,
        max_retries=5,
        mechanism="",
    ):
        self.server = server
        self.camera_id = camera_id
        self.run_id = secrets.token_hex(8)
        self.mechanism = mechanism  # declared in every frame's header, for the operators' privacy panel
        self.max_unacked = max_unacked
        self.on_response = on_response
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retries = max_retries
        self._retries = collections.Counter()  # frame_index -> retryable failures so far
        self.lost = {}  # frame_index -> the error code that lost it
        self._credentials = credentials or tls.camera_credentials(certs_dir, camera_id)
        self._unacked = collections.OrderedDict()  # frame_index -> message bytes
        self._sent_at = {}  # frame_index -> monotonic time of its latest send
        self._cond = threading.Condition()
        self._conn = None
        self._closing = False
        self._stopped = threading.Event()
        self._slow_until = 0.0
        self.stats = collections.Counter()
        self.latencies_ms = []
        self.alerts = {}  # alert id -> last alert dict seen
        self.last_error = None
        self._thread = threading.Thread(target=self._connection_loop, name=f"camera-{camera_id}", daemon=True)
        self._thread.start()

    # --- sending (the capture thread) ----------------------------------------------------------

    def send(self, *, frame_index, timestamp, latent, scale=None, block=True, timeout=None):
        """Queues one latent; returns "sent", "dropped_window" or "dropped_backpressure"."""
        if time.monotonic() < self._slow_until:
            self.stats["dropped_backpressure"] += 1
            return "dropped_backpressure"
        data = wire.encode_frame(
            camera_id=self.camera_id, run_id=self.run_id, frame_index=frame_index,
            timestamp=timestamp, latent=latent, scale=scale, mechanism=self.mechanism,
        )  # fmt: skip
        with self._cond:
            if len(self._unacked) >= self.max_unacked:
                if not block:
                    self.stats["dropped_window"] += 1
                    return "dropped_window"
                if not self._cond.wait_for(lambda: len(self._unacked) < self.max_unacked, timeout):
                    self.stats["dropped_window"] += 1
                    return "dropped_window"
            self._unacked[frame_index] = data
            self._sent_at[frame_index] = time.monotonic()
            self.stats["sent"] += 1
            self.stats["bytes_sent"] += len(data)
            if self._conn is not None:
                self._conn.put(data)
        return "sent"

    def unacked(self):
        with self._cond:
            return len(self._unacked)

    def close(self, timeout=30.0):
        """Waits up to ``timeout`` for every frame to be answered, then ends the stream.

        Returns the number of frames never answered (0 on a clean finish).
        """
        with self._cond:
            self._cond.wait_for(lambda: not self._unacked, timeout)
            left = len(self._unacked)
            self._closing = True
            if self._conn is not None:
                self._conn.end()
        self._stopped.set()
        self._thread.join(10.0)
        return left

    # --- the connection thread -----------------------------------------------------------------

    def _retry(self, response, frame_index):
        """True if this retryable error's frame stays in the window (and the stream restarts)."""
        if response.get("code") != "resend":  # "resend": an earlier frame failed, not this one
            self._retries[frame_index] += 1
        if self._retries[frame_index] > self.max_retries:
            return False
        self.stats["retryable_errors"] += 1
        conn = self._conn
        if conn is not None and not conn.ended:
            conn.ended = True  # half-close: the server answers what it has, then the stream ends
            conn.end()
        return True

    def _handle(self, response):
        status = response.get("status")
        frame_index = response.get("frame_index")
        with self._cond:
            known = frame_index is not None and frame_index in self._unacked
            keep = known and wire.is_retryable(response) and self._retry(response, frame_index)
            if status in FINAL and known and not keep:
                del self._unacked[frame_index]
                self._retries.pop(frame_index, None)
                sent = self._sent_at.pop(frame_index, None)
                if sent is not None and status in ("ok", "replayed"):
                    self.latencies_ms.append(1000 * (time.monotonic() - sent))
                if status == "error":
                    self.lost[frame_index] = response.get("code")
                    self.stats["lost"] += 1
                self._cond.notify_all()
        self.stats[status] += 1
        if status == "overloaded":
            self._slow_until = time.monotonic() + response.get("retry_after_ms", 100) / 1000
        if status == "error":
            self.last_error = response
        if response.get("alert"):
            self.alerts[response["alert"]["id"]] = response["alert"]
        if self.on_response is not None:
            self.on_response(response)

    def _open(self):
        with self._cond:
            conn = _Connection(list(self._unacked.values()))  # resend the window, in order
            now = time.monotonic()
            for index in self._unacked:
                self._sent_at[index] = now
            if self._closing:
                conn.end()
            self._conn = conn
        return conn

    def _connection_loop(self):
        attempt = 0
        while not self._stopped.is_set():
            conn = self._open()
            channel = grpc.secure_channel(
                self.server,
                self._credentials,
                options=[("grpc.keepalive_time_ms", 10000), ("grpc.keepalive_timeout_ms", 5000)],
            )
            call = channel.stream_stream(
                service.FULL_METHOD,
                request_serializer=lambda b: b,
                response_deserializer=wire.decode_response,
            )
            first = True
            try:
                responses = call(conn.requests())
                self.stats["attempts"] += 1
                for response in responses:
                    if first:  # connected: count it once, with the frames it resent
                        first = False
                        self.stats["connects"] += 1
                        self.stats["resent"] += conn.resending
                    attempt = 0
                    self._handle(response)
                if self._closing:
                    return
                log.info("%s: server ended the stream; reconnecting", self.camera_id)
            except grpc.RpcError as e:
                self.last_error = {"status": "rpc_error", "code": str(e.code()), "message": e.details()}
                if first:  # never connected: the server is still down
                    self.stats["failed_attempts"] += 1
                    log.debug("%s: cannot connect (%s)", self.camera_id, e.code())
                else:
                    self.stats["disconnects"] += 1
                    log.info("%s: stream broke (%s: %s); reconnecting", self.camera_id, e.code(), e.details())
            finally:
                with self._cond:
                    self._conn = None
                conn.end()
                channel.close()
            if self._closing and not self.unacked():
                return
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            self._stopped.wait(delay)


def summarize(client, *, frames, unanswered, seconds):
    """A JSON-able summary of a camera run."""
    lat = sorted(client.latencies_ms)

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None

    return {
        "camera_id": client.camera_id,
        "run_id": client.run_id,
        "frames": frames,
        "unanswered": unanswered,
        "seconds": round(seconds, 2),
        "latency_ms_p50": pct(0.5),
        "latency_ms_p99": pct(0.99),
        "alerts": sorted(client.alerts),
        "lost": len(client.lost),
        "lost_frames": sorted(client.lost)[:20],  # the first ones
        "lost_codes": dict(collections.Counter(client.lost.values())),
        **{k: v for k, v in sorted(client.stats.items())},
    }


def run_camera(*, source, encoder, client, fps, max_frames=0, realtime=True, drain_timeout_s=60.0):
    """Reads ``source`` at ``fps``, encodes and streams every frame; returns ``summarize``'s dict.

    Files are sent without loss (``send`` blocks when the window is full);
    live sources drop frames instead of falling behind.
    """
    from ppvad_jax.serving import camera_source  # OpenCV only where frames are read

    live = not pathlib.Path(str(source)).is_file()
    start = time.monotonic()
    frames = 0
    frame_stream = camera_source.frames_at_rate(source, fps=fps, size=encoder.size, realtime=realtime)
    for timestamp, frame in frame_stream:
        latent, scale = encoder.encode(frame, frame_index=frames)
        client.send(frame_index=frames, timestamp=timestamp, latent=latent, scale=scale, block=not live)
        frames += 1
        if max_frames and frames >= max_frames:
            break
    unanswered = client.close(timeout=drain_timeout_s)
    return summarize(client, frames=frames, unanswered=unanswered, seconds=time.monotonic() - start)


def response_printer(log_file=None, *, quiet=False):
    """An ``on_response`` that prints one line per scored frame (alerts only when ``quiet``),
    errors to stderr, and appends every response to ``log_file`` (JSON lines) if given."""

    def on_response(r):
        if log_file is not None:
            log_file.write(json.dumps({"received_at": time.time(), **r}) + "\n")
            log_file.flush()
        status, alert = r.get("status"), r.get("alert")
        if status not in ("ok", "replayed"):
            again = " (will resend)" if wire.is_retryable(r) else ""
            print(f"{status}: {r.get('code', '')} {r.get('message', '')}{again}", file=sys.stderr, flush=True)
        elif alert or not quiet:
            line = f"frame {r['frame_index']:6d}  confidence {r['confidence']:.3f}  sas {r['score']:.3f}"
            if alert:
                line += f"  ALERT {alert['event']} {alert['id']}"
            print(line + ("  (replayed)" if status == "replayed" else ""), flush=True)

    return on_response
