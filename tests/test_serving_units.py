"""The serving pieces one by one: wire format, quantisation, validation, SAS and alerts, store, engine."""

import threading
import time

import numpy as np
import pytest

from ppvad_jax.evaluation import sas
from ppvad_jax.serving import alert_store, camera_state, engine, quantization, scorer, validation, wire

SHAPE = (8, 12, 4)


def _message(latent=None, **kw):
    latent = np.ones(SHAPE, np.float16) if latent is None else latent
    fields = dict(camera_id="cam1", run_id="r1", frame_index=0, timestamp=time.time(), latent=latent)
    fields.update(kw)
    return wire.encode_frame(**fields)


# --- wire format and quantisation ----------------------------------------------------------------


@pytest.mark.parametrize("mode", quantization.MODES)
def test_frame_round_trip_and_quantisation_error(mode):
    latent = np.random.default_rng(0).random(SHAPE, dtype=np.float32) * 3
    array, scale = quantization.quantize(latent, mode)
    m = wire.decode_frame(_message(array, scale=scale, frame_index=7))
    assert (m.camera_id, m.frame_index, m.dtype, m.shape) == ("cam1", 7, mode, SHAPE)
    back = quantization.dequantize(m.array(), scale=m.scale)
    bound = {"float32": 0, "float16": 3 * 2**-11, "int8": scale / 2 if scale else 0}[mode]
    assert np.max(np.abs(back - latent)) <= bound + 1e-7


def test_responses_with_and_without_an_alert_have_the_same_size():
    params = camera_state.SasParams()
    state = camera_state.initial_state("camera-with-a-long-name", params)
    sizes = set()
    for i, c in enumerate([1 / 3] * 3 + [0.9999999] * 10 + [0.0] * 8):
        state, result, alert = camera_state.advance(
            state, confidence=c, run_id="0123456789abcdef", frame_index=10**6 + i, timestamp=1.7e9 + i / 3,
            params=params,
        )  # fmt: skip
        response = engine._result_response("ok", result, alert=alert, latency_ms=1234.5678, batch=32)
        sizes.add(len(wire.encode_response(response)))
        assert wire.decode_response(wire.encode_response(response)) == response
    assert sizes == {wire.RESPONSE_PAD}  # quiet, opened, extended and closed alike


def test_int8_of_a_zero_latent_has_a_positive_scale():
    _, scale = quantization.quantize(np.zeros(SHAPE), "int8")
    assert scale == 1.0


def test_any_truncation_or_garbage_raises_wire_error_only():
    data = _message()
    for n in range(len(data)):
        try:
            wire.decode_frame(data[:n])
        except wire.WireError:
            pass
    rng = np.random.default_rng(0)
    for _ in range(200):
        junk = bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
        with pytest.raises(wire.WireError):
            wire.decode_frame(b"PPVL\x00\x01" + junk if rng.random() < 0.5 else junk)
    with pytest.raises(wire.WireError, match="version"):
        wire.decode_frame(b"PPVL\x00\x09" + data[6:])


# --- validation ----------------------------------------------------------------------------------

LIMITS = validation.Limits(latent_shape=SHAPE, max_message_bytes=4096)


def _check(data, peer="cam1"):
    message = wire.decode_frame(data)
    return validation.validate_frame(message, peer_camera_id=peer, known_cameras=("cam1",), limits=LIMITS)


def test_validation_accepts_a_good_frame():
    assert _check(_message()).dtype == np.float32


@pytest.mark.parametrize(
    "data, peer, code",
    [
        (_message(np.ones((8, 12, 5), np.float16)), "cam1", "shape"),
        (_message(np.full(SHAPE, np.inf, np.float16)), "cam1", "not_finite"),
        (_message(np.full(SHAPE, 6e4, np.float16)), "cam1", "out_of_range"),
        (_message() + b"\x00" * 8, "cam1", "payload_size"),
        (_message(np.ones((30, 40, 4), np.float16)), "cam1", "too_large"),
        (_message(camera_id="cam2"), "cam1", "camera_mismatch"),
        (_message(camera_id="cam9"), "cam9", "unknown_camera"),
        (_message(np.ones(SHAPE, np.int8), scale=0.0), "cam1", "bad_scale"),
        (_message(frame_index=-1), "cam1", "bad_frame_index"),
        (_message(timestamp=float("nan")), "cam1", "bad_timestamp"),
    ],
)
def test_validation_rejects_with_a_code(data, peer, code):
    with pytest.raises(validation.RejectedFrame) as info:
        _check(data, peer)
    assert info.value.code == code


# --- SAS and alerts --------------------------------------------------------------------------------


def test_sas_steps_match_the_compiled_whole_sequence_score():
    confidences = np.random.default_rng(1).random(300)
    params = camera_state.SasParams()
    state = camera_state.initial_state("cam1", params)
    scores = []
    for i, c in enumerate(confidences):
        state, result, _ = camera_state.advance(
            state, confidence=c, run_id="r", frame_index=i, timestamp=float(i), params=params
        )
        scores.append(result.score)
    reference = sas.sigmoidal_anomaly_score(confidences.astype(np.float32), method="sequential")
    np.testing.assert_allclose(scores, np.asarray(reference), atol=2e-6)


def test_an_alert_opens_extends_and_closes():
    params = camera_state.SasParams()
    state = camera_state.initial_state("cam1", params)
    events = []
    for i, c in enumerate([1.0] * 6 + [0.0] * 6):
        state, result, alert = camera_state.advance(
            state, confidence=c, run_id="r", frame_index=i, timestamp=10.0 + i, params=params
        )
        events.append(result.alert_event)
    # x: -5 -3 -1 +1 +3 +5 | +3 +1 -1 ...: open at frame 3, extended to 7, closed at 8
    assert events == [None] * 3 + ["opened"] + ["extended"] * 4 + ["closed"] + [None] * 3
    assert alert is None and state.open_alert is None


# --- engine (fake decoder: no JAX) -----------------------------------------------------------------


class _Session:
    def __init__(self):
        self.responses = []
        self.done = threading.Condition()
        self.closed = False
        self.closed_after = None  # how many responses had been delivered when it was closed

    def close(self, *, shutting_down=False):
        self.closed = shutting_down
        self.closed_after = len(self.responses)

    def deliver(self, response):
        with self.done:
            self.responses.append(response)
            self.done.notify_all()

    def wait(self, n, timeout=10):
        with self.done:
            assert self.done.wait_for(lambda: len(self.responses) >= n, timeout), self.responses


class _RecordingScorer:
    name = "recording"

    def __init__(self, gate=None):
        self.batches = []
        self.gate = gate

    def __call__(self, batch):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(batch)
        return np.full(len(batch.camera_ids), 0.9)


def _decoder(latents):
    """Latent [n, 8, 12, 4] -> a 64x96 image whose bright square sits where the latent says."""
    frames = np.zeros((len(latents), 64, 96, 3), np.uint8)
    for i, z in enumerate(latents):
        x = int(z[0, 0, 0])
        frames[i, 20:40, x : x + 16] = 255
    return frames


def _request(session, camera, index, x):
    latent = np.zeros(SHAPE, np.float32)
    latent[0, 0, 0] = x
    message = wire.decode_frame(_message(latent.astype(np.float16), camera_id=camera, frame_index=index))
    return engine.Request(session=session, message=message, latent=latent)


def _engine(tmp_path, scorer_fn, store=None, **options):
    store = store or alert_store.SqliteAlertStore(tmp_path / "a.sqlite", synchronous="NORMAL")
    return engine.Engine(
        decoder=_decoder, scorer=scorer_fn, store=store, sas_params=camera_state.SasParams(),
        options=engine.EngineOptions(**{"tick_s": 0.05, "flow_threads": 1, **options}),
    )  # fmt: skip


def test_frames_of_one_camera_in_one_tick_flow_from_each_other(tmp_path):
    gate = threading.Event()
    recorder = _RecordingScorer(gate)
    eng = _engine(tmp_path, recorder, max_batch=8)
    a, b = _Session(), _Session()
    for i, x in enumerate([10, 14, 18]):
        assert eng.submit(_request(a, "cam1", i, x)) is None
        assert eng.submit(_request(b, "cam2", i, 40)) is None
    gate.set()
    a.wait(3)
    b.wait(3)
    eng.close()
    flows = np.concatenate([batch.flows for batch in recorder.batches])
    cams = sum((batch.camera_ids for batch in recorder.batches), ())
    moving = [float(np.abs(f[..., 0]).max()) for f, c in zip(flows, cams, strict=True) if c == "cam1"]
    still = [float(np.abs(f).max()) for f, c in zip(flows, cams, strict=True) if c == "cam2"]
    assert moving[0] == 0.0 and min(moving[1:]) > 1.0  # first frame: no previous reconstruction
    assert max(still) < 0.5
    assert [r["frame_index"] for r in a.responses] == [0, 1, 2]


def test_back_pressure_and_a_draining_close(tmp_path):
    gate = threading.Event()
    eng = _engine(tmp_path, _RecordingScorer(gate), max_batch=1, max_pending_per_camera=2, max_queue=3)
    session = _Session()
    assert eng.submit(_request(session, "cam1", 0, 10)) is None
    time.sleep(0.2)  # the tick thread has taken frame 0 and waits at the gate
    assert eng.submit(_request(session, "cam1", 1, 10)) is None
    overloaded = eng.submit(_request(session, "cam1", 2, 10))
    assert overloaded["status"] == "overloaded" and overloaded["retry_after_ms"] > 0
    assert eng.submit(_request(session, "cam2", 0, 10)) is None
    assert eng.submit(_request(session, "cam3", 0, 10)) is None
    assert eng.submit(_request(session, "cam4", 0, 10))["message"].startswith("server overloaded (queue full")
    closer = threading.Thread(target=eng.close)
    closer.start()
    time.sleep(0.1)
    assert eng.submit(_request(session, "cam1", 3, 10))["status"] == "shutting_down"
    gate.set()
    closer.join(10)
    assert sorted((r["camera_id"], r["frame_index"]) for r in session.responses) == [
        ("cam1", 0), ("cam1", 1), ("cam2", 0), ("cam3", 0),
    ]  # fmt: skip
    assert all(r["status"] == "ok" for r in session.responses)


def test_frames_that_waited_too_long_are_dropped_not_scored_late(tmp_path):
    gate = threading.Event()
    eng = _engine(tmp_path, _RecordingScorer(gate), max_batch=1, max_queue_delay_s=0.2)
    session = _Session()
    for i in range(3):
        eng.submit(_request(session, "cam1", i, 10))
    time.sleep(0.4)  # frame 0 is in the (gated) tick; 1 and 2 wait in the queue past the limit
    gate.set()
    session.wait(3)
    eng.close()
    statuses = {r["frame_index"]: r["status"] for r in session.responses}
    assert statuses == {0: "ok", 1: "overloaded", 2: "overloaded"}
    assert "waited" in session.responses[-1]["message"]


def test_a_failing_scorer_answers_errors_and_the_engine_goes_on(tmp_path):
    calls = []

    def flaky(batch):
        calls.append(1)
        return np.full(len(batch.camera_ids), np.nan if len(calls) == 1 else 0.2)

    flaky.name = "flaky"
    eng = _engine(tmp_path, flaky, max_batch=1)
    session = _Session()
    eng.submit(_request(session, "cam1", 0, 10))
    session.wait(1)
    eng.submit(_request(session, "cam1", 1, 10))  # behind the failed frame 0: "resend", not scored
    session.wait(2)
    eng.submit(_request(session, "cam1", 0, 10))  # the camera resends its window in order
    eng.submit(_request(session, "cam1", 1, 10))
    session.wait(4)
    eng.close()
    first, held = session.responses[:2]
    assert first["code"] == "scorer" and first["retryable"] is True
    assert held["code"] == "resend" and held["retryable"] is True
    assert [(r["frame_index"], r["status"]) for r in session.responses[2:]] == [(0, "ok"), (1, "ok")]


def test_motion_energy_placeholder_is_monotone_in_motion():
    s = scorer.MotionEnergyScorer(midpoint=1.0, slope=4.0)
    flows = np.zeros((3, 4, 4, 2), np.float32)
    flows[1] += 1.0
    flows[2] += 3.0
    batch = scorer.FrameBatch(None, flows, None, ("a", "b", "c"))
    c = s(batch)
    assert c[0] < c[1] < c[2] and 0 < c[0] and c[2] < 1


def test_a_camera_moved_to_another_server_continues_its_sas_and_alert(tmp_path, postgres_server):
    """Two servers share one PostgreSQL store; both start before the camera is seen. The camera
    streams to A (alert opens), A goes away, it reconnects to B: B must re-read the camera's
    state when the stream opens, not use what it loaded at its own start."""
    a = _engine(tmp_path, _RecordingScorer(), alert_store.PostgresAlertStore(postgres_server), max_batch=2)
    b = _engine(tmp_path, _RecordingScorer(), alert_store.PostgresAlertStore(postgres_server), max_batch=2)
    first, second = _Session(), _Session()
    a.claim("cam-moved")
    for i in range(5):
        assert a.submit(_request(first, "cam-moved", i, 10)) is None
    first.wait(5)
    a.close()
    b.claim("cam-moved")  # what the service does when the camera's stream opens on B
    for i in range(5, 8):
        assert b.submit(_request(second, "cam-moved", i, 10)) is None
    second.wait(8 - 5)
    b.close()
    before, after = first.responses[-1], second.responses[0]
    step, _ = camera_state.sas_step(before["accumulator"], 0.9, camera_state.SasParams())
    assert after["accumulator"] == pytest.approx(step)
    assert before["alert"]["event"] in ("opened", "extended") and after["alert"]["event"] == "extended"
    assert after["alert"]["id"] == before["alert"]["id"]
    assert len([x for x in a.store.list_alerts() if x.camera_id == "cam-moved"]) == 1


def test_a_stale_server_cannot_write_a_camera_another_server_claimed(tmp_path, postgres_server):
    """Fencing: A still holds the camera's stream when B claims it (a partition, a slow drain).
    A's next frame is not written: it is answered shutting_down (the camera keeps it and
    resends it after reconnecting) and A closes the stream; B's state is untouched."""
    store_a, store_b = (alert_store.PostgresAlertStore(postgres_server) for _ in range(2))
    a = _engine(tmp_path, _RecordingScorer(), store_a, max_batch=1)
    b = _engine(tmp_path, _RecordingScorer(), store_b, max_batch=1)
    on_a, on_b = _Session(), _Session()
    a.claim("cam-stale")
    assert a.submit(_request(on_a, "cam-stale", 0, 10)) is None
    on_a.wait(1)
    b.claim("cam-stale")
    assert b.submit(_request(on_b, "cam-stale", 1, 10)) is None
    on_b.wait(1)
    assert a.submit(_request(on_a, "cam-stale", 2, 10)) is None  # A has not noticed
    on_a.wait(2)
    a.close()
    b.close()
    stale = on_a.responses[1]
    assert stale["status"] == "shutting_down" and "another server" in stale["message"] and on_a.closed
    assert on_a.closed_after == 2  # closed after the answer went out, not before
    assert a.stats["moved"] == 1
    state = store_b.load_states(["cam-stale"])["cam-stale"]
    assert state.last_frame_index == 1 and state.accumulator == on_b.responses[0]["accumulator"]
    assert store_b.lookup_result("cam-stale", "r1", 2) is None


def test_a_claim_that_fails_is_retried_before_the_next_tick(tmp_path):
    class FlakyStore(alert_store.SqliteAlertStore):
        failures = 1

        def claim(self, camera_id, owner):
            if self.failures:
                self.failures -= 1
                raise OSError("store unreachable")
            return super().claim(camera_id, owner)

    store = FlakyStore(tmp_path / "a.sqlite", synchronous="NORMAL")
    eng = _engine(tmp_path, _RecordingScorer(), store, max_batch=1)
    session = _Session()
    eng.claim("cam1")
    assert eng.submit(_request(session, "cam1", 0, 10)) is None
    session.wait(1)
    assert (
        session.responses[0]["code"] == "internal" and "store unreachable" in session.responses[0]["message"]
    )
    assert eng.submit(_request(session, "cam1", 0, 10)) is None  # retryable: the camera resends it
    session.wait(2)
    eng.close()
    assert session.responses[0]["retryable"] is True
    assert session.responses[1]["status"] == "ok" and store.owners()["cam1"][0] == eng.owner
