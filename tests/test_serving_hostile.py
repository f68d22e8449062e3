"""The server holds against a hostile or broken camera. One test (or more) per defect;
each docstring names the defect it guards and what today's code did instead."""

import collections
import json
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest

from launch import alerts as alerts_tool
from ppvad_jax.serving import (
    alert_store,
    camera_client,
    camera_state,
    engine,
    service,
    tls,
    validation,
    wire,
)
from tests import serving_support as support

CAMERAS = ("cam1", "cam2", "cam3", "hostile")
MAX_REPLIES = 16


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One in-process server for the module: small reply bounds and a fast stall timeout."""
    root = tmp_path_factory.mktemp("hostile")
    overrides = {
        "limits.max_replies_per_stream": MAX_REPLIES,
        "limits.stall_timeout_s": 1.0,
        "reload_every_s": 0.2,
    }
    with support.in_process_world(root, CAMERAS, **overrides) as world:
        yield world


def _frame(camera_id, index, shape, *, run_id="hostile-test", timestamp=None):
    latent = np.random.default_rng(index).random(shape, dtype=np.float32).astype(np.float16)
    return wire.encode_frame(
        camera_id=camera_id, run_id=run_id, frame_index=index,
        timestamp=time.time() if timestamp is None else timestamp, latent=latent,
    )  # fmt: skip


def _stream(world, camera_id):
    return support.raw_stream(
        world["server"].port, tls.camera_credentials(world["certs"], camera_id), timeout=30
    )


# --- defect 1: one camera's frame must not cost another camera its frames ---------------------


LIMITS = validation.Limits(latent_shape=(8, 12, 4), max_message_bytes=4096)


def _validate(**fields):
    latent = fields.pop("latent", np.ones((8, 12, 4), np.float16))
    header = dict(camera_id="cam1", run_id="r1", frame_index=0, timestamp=time.time(), latent=latent)
    message = wire.decode_frame(wire.encode_frame(**{**header, **fields}))
    return validation.validate_frame(message, peer_camera_id="cam1", known_cameras=("cam1",), limits=LIMITS)


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"frame_index": 2**63}, "bad_frame_index"),  # the store's BIGINT ends at 2**63 - 1
        ({"frame_index": 10**30}, "bad_frame_index"),
        ({"run_id": "r\x00"}, "bad_run_id"),  # PostgreSQL TEXT refuses NUL: a failed commit
        ({"run_id": "r\ud800"}, "bad_run_id"),  # SQLite cannot encode a lone surrogate
        ({"latent": np.ones((8, 12, 4), np.int8), "scale": 1e30}, "bad_scale"),  # float32 overflow
    ],
)
def test_header_fields_are_checked_against_the_store_ranges(fields, code):
    """Defect 1: validation checked frame_index >= 0 only, so 2**63 reached the store lookup
    and raised OverflowError inside the tick; a NUL run id would fail a PostgreSQL commit."""
    with pytest.raises(validation.RejectedFrame) as info:
        _validate(**fields)
    assert info.value.code == code and info.value.args[0]


def test_the_largest_valid_frame_index_is_stored_and_read_back(tmp_path):
    """Defect 1: the bound is the store's real one, not a guess (2**63 - 1 round-trips)."""
    assert _validate(frame_index=validation.MAX_FRAME_INDEX).shape == (8, 12, 4)
    store = alert_store.SqliteAlertStore(tmp_path / "a.sqlite", synchronous="NORMAL")
    params = camera_state.SasParams()
    state, result, _ = camera_state.advance(
        camera_state.initial_state("cam1", params), confidence=0.5, run_id="r1",
        frame_index=validation.MAX_FRAME_INDEX, timestamp=time.time(), params=params,
    )  # fmt: skip
    store.commit_tick([result], [state], [])
    assert store.lookup_result("cam1", "r1", validation.MAX_FRAME_INDEX) == result
    store.close()


class _Session:
    def __init__(self):
        self.responses = []
        self.cond = threading.Condition()

    def deliver(self, response):
        with self.cond:
            self.responses.append(response)
            self.cond.notify_all()

    def close(self, **_):
        pass

    def wait(self, n, timeout=20):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.responses) >= n, timeout), self.responses


class _PoisonStore(alert_store.SqliteAlertStore):
    """Fails every lookup of camera "bad", as 2**63 made SQLite raise OverflowError."""

    def lookup_result(self, camera_id, run_id, frame_index):
        if camera_id == "bad":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return super().lookup_result(camera_id, run_id, frame_index)


def _request(session, camera, index):
    latent = np.zeros((8, 12, 4), np.float32)
    message = wire.decode_frame(
        wire.encode_frame(camera_id=camera, run_id="r1", frame_index=index, timestamp=time.time(),
                          latent=latent.astype(np.float16))
    )  # fmt: skip
    return engine.Request(session=session, message=message, latent=latent)


def _fake_decoder(latents):
    return np.zeros((len(latents), 64, 96, 3), np.uint8)


def _confident(batch):
    return np.full(len(batch.camera_ids), 0.9)


_confident.name = "confident"


def test_a_tick_failing_for_one_camera_is_retried_for_the_others(tmp_path):
    """Defect 1: one tick held frames of an honest camera and of one whose lookup raised; every
    frame of the tick was answered "internal" (measured: the second camera lost 20 of 30)."""
    store = _PoisonStore(tmp_path / "a.sqlite", synchronous="NORMAL")
    eng = engine.Engine(
        decoder=_fake_decoder, scorer=_confident, store=store, sas_params=camera_state.SasParams(),
        options=engine.EngineOptions(max_batch=8, tick_s=0.05, flow_threads=1),
    )  # fmt: skip
    honest, bad = _Session(), _Session()
    with eng._cond:  # both cameras' frames land in one tick
        for i in range(3):
            assert eng.submit(_request(honest, "good", i)) is None
            assert eng.submit(_request(bad, "bad", i)) is None
    honest.wait(3)
    bad.wait(3)
    eng.close()
    assert [r["status"] for r in honest.responses] == ["ok"] * 3, honest.responses
    assert {r["code"] for r in bad.responses} == {"internal"}
    assert all(r["retryable"] for r in bad.responses) and eng.stats["isolated_retries"] == 1
    assert [r.frame_index for r in store.frame_results("good")] == [0, 1, 2]


# --- defect 2: the camera resends retryable errors and counts what it lost ---------------------


def _failing(store, failures):
    """``store.commit_tick`` that raises the first ``failures`` times (None: always)."""
    original, count = store.commit_tick, [0]

    def commit_tick(*args, **kwargs):
        count[0] += 1
        if failures is None or count[0] <= failures:
            raise OSError("disk unavailable (injected)")
        return original(*args, **kwargs)

    return commit_tick


def test_the_camera_resends_frames_answered_with_a_retryable_error(world, monkeypatch):
    """Defect 2: the client treated every error as final, so frames answered "store" (a commit
    that failed for a moment) were never resent and never scored."""
    srv = world["server"]
    monkeypatch.setattr(srv.engine.store, "commit_tick", _failing(srv.engine.store, 2))
    client = camera_client.CameraClient(
        server=f"localhost:{srv.port}", certs_dir=world["certs"], camera_id="cam2", backoff_s=0.05,
        max_backoff_s=0.2,
    )  # fmt: skip
    latent = np.ones(srv.decoder.latent_shape, np.float16)
    for i in range(8):
        assert client.send(frame_index=i, timestamp=time.time(), latent=latent) == "sent"
    assert client.close(timeout=60) == 0
    assert client.lost == {} and client.stats["retryable_errors"] >= 1 and client.stats["error"] >= 1
    scored = [r.frame_index for r in srv.store.frame_results("cam2") if r.run_id == client.run_id]
    assert scored == list(range(8))  # every frame, once, in order


def test_launch_camera_exits_non_zero_with_a_count_when_frames_are_lost(world, monkeypatch):
    """Defect 2: launch.camera exited 0 although frames were answered with errors (an alert
    could have been among them); now it exits 4 and says how many."""
    srv = world["server"]
    monkeypatch.setattr(srv.engine.store, "commit_tick", _failing(srv.engine.store, None))
    clip = support.write_clip(world["root"] / "lost.avi", num_frames=3)
    done = subprocess.run(
        [
            sys.executable, "-m", "launch.camera", f"--source={clip}", f"--server=localhost:{srv.port}",
            f"--certs_dir={world['certs']}", "--camera_id=cam3", f"--ae_export={world['export']}",
            "--fps=20", "--realtime=false", "--max_retries=5", "--drain_timeout_s=60",
        ],
        cwd=support.ROOT, env=support.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr[-3000:]
    assert "3 frame(s) were lost" in done.stderr and "'store': 3" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["lost"] == 3 and summary["unanswered"] == 0


# --- defect 3: a camera that does not read its answers cannot grow the server ------------------


# A hostile camera's channel: no BDP probing keeps its receive window at 64 KiB, so the server's
# answers back up after ~130 of them instead of after the ~4 MB a growing window absorbs first.
HOSTILE_CHANNEL = (("grpc.http2.bdp_probe", 0),)
FLOOD = 20_000  # junk messages queued at once; the old server read (and answered into memory) all


def _flood(world):
    """Queues FLOOD junk messages on a hostile stream that never reads; returns what the server
    read of them, the largest reply queue seen, and the error the stream ended with."""
    srv = world["server"]
    before = srv.engine.stats["error_malformed"]
    send, responses, end = support.raw_stream(
        srv.port, tls.camera_credentials(world["certs"], "hostile"), timeout=30, options=HOSTILE_CHANNEL
    )
    peak = 0
    try:
        for _ in range(FLOOD):
            send(b"junk")
        deadline = time.monotonic() + 20
        opened = False
        while time.monotonic() < deadline:
            session = srv.service.sessions().get("hostile")
            opened = opened or session is not None
            if opened and session is None:
                break  # the server ended the stream
            peak = max(peak, session.out.qsize() if session else 0)
            time.sleep(0.01)
        read = srv.engine.stats["error_malformed"] - before
        with pytest.raises(grpc.RpcError) as info:
            for response in responses:  # what had reached the camera before the stream ended
                assert response["code"] == "malformed"
    finally:
        end()
    return read, peak, info.value


def test_a_camera_that_never_reads_is_bounded_then_disconnected(world):
    """Defect 3: a stream's reply queue was unbounded: junk sent without reading the answers
    grew the server by 94 MB for 300,000 messages. Now at most MAX_REPLIES answers wait per
    stream, the stream stops being read (the old server read all FLOOD messages), and it is
    ended with RESOURCE_EXHAUSTED, naming the reason; other cameras are served as before."""
    srv = world["server"]
    exhausted = srv.engine.stats["streams_exhausted"]
    read, peak, error = _flood(world)
    # At most MAX_REPLIES answers; as the stream ends, the queue also holds its two control
    # markers (the reader's wake-up and the close), which a sample can catch (seen once: 17).
    assert peak <= MAX_REPLIES + 2
    assert read < 1000, f"the server read {read} of {FLOOD} messages of a camera that reads nothing"
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "unread" in error.details()
    assert srv.engine.stats["streams_exhausted"] == exhausted + 1
    send, responses, end = _stream(world, "cam1")
    try:
        send(_frame("cam1", 0, srv.decoder.latent_shape, run_id="after-flood"))
        assert next(responses)["status"] == "ok"
    finally:
        end()


class _HoldingEngine:
    """Keeps every frame it is given until ``answer_all``: a slow server, not a slow camera."""

    def __init__(self):
        self.requests, self.stats = [], collections.Counter()

    def submit(self, request):
        self.requests.append(request)

    def answer_all(self):
        for r in self.requests:
            r.session.deliver(wire.make_response("ok", frame_index=r.message.frame_index))


class _Context:
    def __init__(self):
        self.code, self.cancelled = None, threading.Event()

    def set_code(self, code):
        self.code = code

    def set_details(self, details):
        pass

    def cancel(self):
        self.cancelled.set()


def test_frames_the_server_itself_holds_do_not_count_as_a_stalled_camera():
    """Defect 3 (the bound's other side): slots held by frames still in the engine are the
    server's delay; an honest camera behind a slow tick must not be cut off. Only answers
    left unsent (the camera not reading) end the stream."""
    eng = _HoldingEngine()
    options = service.ServiceOptions(
        known_cameras=("cam1",), limits=LIMITS, max_replies=2, stall_timeout_s=0.2
    )
    svc = service.AnalysisService(eng, options)
    session, context = service.Session("cam1", max_replies=2), _Context()
    frames = iter([wire.decode_frame(_frame("cam1", i, (8, 12, 4), run_id="slow")) for i in range(4)])
    reader = threading.Thread(target=svc._read, args=(session, frames, context), daemon=True)
    reader.start()
    time.sleep(1.0)  # five stall timeouts with both slots held by the engine
    assert len(eng.requests) == 2 and not session.closed.is_set() and not context.cancelled.is_set()
    eng.answer_all()  # answers now wait in the queue and nobody sends them: the camera stalls
    assert context.cancelled.wait(5) and session.closed.is_set()
    assert context.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    reader.join(5)
    assert not reader.is_alive()


# --- defect 4: timestamps in a window, readers robust to a bad row --------------------------------


@pytest.mark.parametrize("offset", [1e300, -1e300, 3600.0, -2 * 86400.0])
def test_timestamps_far_from_the_server_clock_are_rejected(offset):
    """Defect 4: any finite timestamp was accepted; 1e300 was stored as an alert time."""
    with pytest.raises(validation.RejectedFrame) as info:
        _validate(timestamp=time.time() + offset)
    assert info.value.code == "bad_timestamp" and "window" in str(info.value)


def _store_with_a_bad_alert(path):
    store = alert_store.SqliteAlertStore(path, synchronous="NORMAL")
    good = camera_state.Alert("cam1:r:3", "cam1", "r", 3, 1.7e9, 5, 1.7e9 + 1, 0.9, False)
    bad = camera_state.Alert("cam2:r:3", "cam2", "r", 3, 1e300, 3, 1e300, 0.9, True)
    store.commit_tick([], [], [good, bad])
    store.close()


def test_launch_alerts_lists_the_rest_and_marks_a_bad_row_invalid(tmp_path):
    """Defect 4: one alert stored with time 1e300 made launch.alerts crash (OverflowError) for
    the whole store."""
    path = tmp_path / "a.sqlite"
    _store_with_a_bad_alert(path)
    store = alerts_tool.open_reader(db=str(path))
    try:
        lines = alerts_tool.report(store)
        written = alerts_tool.report(store, csv_path=str(tmp_path / "a.csv"))
    finally:
        store.close()
    assert lines[0] == "2 alert(s), 1 invalid"
    assert lines[1].startswith("closed cam1") and lines[2].startswith("INVALID 'cam2:r:3'")
    assert written == [f"wrote 2 alert(s) to {tmp_path / 'a.csv'}"]


# --- defect 8 (launch.alerts): read-only, and only an alert store ------------------------------


def test_launch_alerts_refuses_a_file_that_is_not_an_alert_store_and_leaves_it_alone(tmp_path):
    """Defect 8: launch.alerts opened any SQLite file read-write, added the store's tables and
    switched it to WAL. Now it opens read-only and refuses it, naming the file."""
    import sqlite3  # noqa: PLC0415

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = other.read_bytes()
    with pytest.raises(alerts_tool.app.UsageError, match="other.db: not an alert store"):
        alerts_tool.open_reader(db=str(other))
    assert other.read_bytes() == before and not (tmp_path / "other.db-wal").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(alerts_tool.app.UsageError, match="junk.db: not an SQLite database"):
        alerts_tool.open_reader(db=str(tmp_path / "junk.db"))


def test_service_rejects_are_named_never_internal():
    """Defect 1 (wire side): every rejection of the service's handler has a code and is final."""
    response = wire.make_response("error", code="bad_frame_index", message="x")
    assert response["retryable"] is False and wire.is_retryable({**response, "code": "internal"}) is False
    assert wire.is_retryable({"status": "error", "code": "store"}) is True
    assert service.parse_request(b"\x00").code == "malformed"
