"""The operator console: its store queries (SQLite and PostgreSQL), its API and its security.

The browser test (a real Chromium against a real server and console) is tests/test_console_browser.py.
"""

import asyncio
import csv
import dataclasses
import io
import json
import time

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from ppvad_jax.serving import alert_store, camera_state, operator_store
from ppvad_jax.serving.console import accounts
from ppvad_jax.serving.console import app as console_app
from tests import test_alert_store as store_tests

OPERATOR, VIEWER, PASSWORD = "olga", "victor", "correct horse battery"
open_new = store_tests.open_new  # the same SQLite / PostgreSQL fixture as the store's contract


def _stream(store, camera, n, *, start_time, confidence=1.0, run_id="r"):
    """``n`` frames of one camera committed like the engine does, stamped from ``start_time``."""
    params = camera_state.SasParams()
    state = store.load_states([camera]).get(camera) or camera_state.initial_state(camera, params)
    results, alerts = [], {}
    for i in range(n):
        index = state.last_frame_index + 1
        state, result, alert = camera_state.advance(
            state, confidence=confidence, run_id=run_id, frame_index=index, timestamp=start_time + i / 10,
            params=params,
        )  # fmt: skip
        results.append(result)
        if alert:
            alerts[alert.alert_id] = alert
    store.commit_tick(results, [state], list(alerts.values()))
    return state


def test_acknowledge_then_resolve_is_recorded_with_user_and_time_and_refused_out_of_order(open_new):
    store = open_new()
    ops = operator_store.OperatorStore(store)
    _stream(store, "cam1", 8, start_time=time.time() - 5)
    (view,) = ops.alerts()
    assert view.state == "open" and view.alert.camera_id == "cam1"
    with pytest.raises(operator_store.ActionRefused, match="no alert"):
        ops.record_action("cam1:nope:0", "acknowledge", username=OPERATOR, role="operator")
    with pytest.raises(operator_store.ActionRefused, match="unknown action"):
        ops.record_action(view.alert.alert_id, "delete", username=OPERATOR, role="operator")
    state = ops.record_action(
        view.alert.alert_id, "acknowledge", username=OPERATOR, role="operator", note="seen", now=100.0
    )
    assert state == "acknowledged"
    with pytest.raises(operator_store.ActionRefused, match="acknowledged"):
        ops.record_action(view.alert.alert_id, "acknowledge", username="other", role="operator")
    ops.record_action(view.alert.alert_id, "resolve", username="other", role="operator", now=200.0)
    with pytest.raises(operator_store.ActionRefused, match="resolved"):
        ops.record_action(view.alert.alert_id, "resolve", username=OPERATOR, role="operator")
    store.close()
    again = operator_store.OperatorStore(open_new())  # a reopened store (a restarted console) sees it all
    got = again.alert(view.alert.alert_id)
    assert got.state == "resolved"
    assert [(a.action, a.username, a.note, a.at) for a in got.actions] == [
        ("acknowledge", OPERATOR, "seen", 100.0), ("resolve", "other", "", 200.0)
    ]  # fmt: skip
    assert [v.alert.alert_id for v in again.alerts(state="resolved")] == [view.alert.alert_id]
    assert again.alerts(state="open") == []
    with pytest.raises(ValueError, match="state must be one of"):
        again.alerts(state="closed")
    again.store.close()


def test_alert_filters_order_and_time_range(open_new):
    store = open_new()
    ops = operator_store.OperatorStore(store)
    t0 = time.time() - 100
    _stream(store, "cam1", 8, start_time=t0)
    _stream(store, "cam2", 8, start_time=t0 + 50)
    listed = ops.alerts()
    assert [v.alert.camera_id for v in listed] == ["cam2", "cam1"]  # newest first
    assert [v.alert.camera_id for v in ops.alerts(camera_id="cam1")] == ["cam1"]
    assert [v.alert.camera_id for v in ops.alerts(since=t0 + 40)] == ["cam2"]
    assert [v.alert.camera_id for v in ops.alerts(until=t0 + 40)] == ["cam1"]
    timeline = ops.timeline("cam1", since=t0, until=t0 + 0.45)
    assert [round(t - t0, 3) for t, *_ in timeline] == [0.0, 0.1, 0.2, 0.3, 0.4]
    # The SAS of confidence 1 from the floor: -7 -> -5 -> -3 -> -1 -> +1 (sigmoid of each).
    np.testing.assert_allclose([s for *_, s, _ in timeline], 1 / (1 + np.exp(-np.array([-5, -3, -1, 1, 3]))))
    store.close()


def test_camera_status_rates_lag_and_thumbnail(open_new):
    store = open_new()
    ops = operator_store.OperatorStore(store)
    now = time.time()
    _stream(store, "cam1", 5, start_time=now - 0.7)  # captured 0.7-0.3 s ago, committed now
    frame = np.zeros((30, 40, 3), np.uint8)
    frame[:, :20] = (250, 10, 10)
    ops.put_live(
        "cam1", owner="srv", received_fps=9.5, scored_fps=9.0, frame_index=4,
        thumbnail=operator_store.jpeg(frame), mechanism="redact_fill@0.8+ae", autoencoder="{}",
    )  # fmt: skip
    (cam,) = ops.cameras()
    assert cam["status"] == "connected" and cam["mechanism"] == "redact_fill@0.8+ae"
    assert (cam["received_fps"], cam["scored_fps"]) == (9.5, 9.0)
    # Captured 0.7-0.3 s before the commit: the median lag is 0.5 s plus the commit's own time.
    assert 0.5 <= cam["lag_p50_s"] <= 2.0 and 0.65 <= cam["lag_p99_s"] <= 2.2
    assert cam["sas"] == pytest.approx(1 / (1 + np.exp(-3.0)))
    decoded = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(ops.thumbnail("cam1"), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert decoded.shape == frame.shape and decoded[5, 5, 0] > 200 and decoded[5, 35, 0] < 40
    (silent,) = ops.cameras(now=now + 120)  # 2 min later with no frame: silent, no recent lag
    assert silent["status"] == "silent" and silent["received_fps"] == 0.0 and silent["lag_p50_s"] is None
    store.claim("cam1", "srv")  # its stream opened again, no frame yet: reconnecting, then silent
    claimed = time.time()
    assert operator_store.camera_status(claimed + 10, now, claimed) == "reconnecting"
    assert [c["status"] for c in ops.cameras(now=claimed + 10)] == ["reconnecting"]
    assert [c["status"] for c in ops.cameras(now=claimed + 120)] == ["silent"]
    store.close()


# --- the web app ---------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path, open_new):
    """The app over a store holding one camera's alert (SQLite and PostgreSQL alike)."""
    store = open_new()
    users = tmp_path / "users.json"
    book = accounts.Accounts(users)
    book.add(OPERATOR, PASSWORD, "operator")
    book.add(VIEWER, PASSWORD, "viewer")
    _stream(store, "cam1", 8, start_time=time.time() - 3)
    web = console_app.make_app(store, users, secret="test-secret", poll_s=0.05)
    yield {"app": web, "store": store, "users": users, "tmp": tmp_path, "reopen": open_new}
    store.close()


def _client(site):
    return TestClient(site["app"], base_url="https://testserver", follow_redirects=False)


def _login(client, name, password=PASSWORD):
    page = client.get("/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    return client.post("/login", data={"username": name, "password": password, "csrf": token})


def _csrf(client, path="/"):
    return client.get(path).text.split('name="csrf" value="')[1].split('"')[0]


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/"), ("GET", "/alerts"), ("GET", "/alerts/cam1:r:3"), ("GET", "/privacy"),
     ("GET", "/alerts.csv"), ("GET", "/cameras/cam1/thumbnail.jpg"),
     ("POST", "/alerts/cam1:r:3/acknowledge")],
)  # fmt: skip
def test_an_unauthenticated_request_sees_only_the_login_page(site, method, path):
    with _client(site) as client:
        response = client.request(method, path)
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert "cam1" not in response.text
        for api in ("/api/cameras", "/api/alerts", "/api/timeline/cam1", "/events"):
            assert client.get(api).status_code == 401
    assert operator_store.OperatorStore(site["store"]).alerts()[0].state == "open"


def test_login_sets_a_strict_cookie_and_wrong_passwords_are_throttled(site):
    with _client(site) as client:
        assert (
            client.post("/login", data={"username": OPERATOR, "password": PASSWORD}).status_code == 403
        )  # no token
        response = _login(client, OPERATOR)
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
        home = client.get("/")
        assert home.status_code == 200 and "cam1" in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]
    with _client(site) as client:
        for _ in range(5):
            assert _login(client, VIEWER, "wrong password!").headers["location"] == "/login?error=wrong"
        assert (
            _login(client, VIEWER).headers["location"] == "/login?error=locked"
        )  # even the right one, for now
        assert client.get("/").status_code == 303


def test_only_an_operator_with_the_csrf_token_acknowledges_and_it_is_committed_first(site):
    (view,) = operator_store.OperatorStore(site["store"]).alerts()
    path = f"/alerts/{view.alert.alert_id}"
    with _client(site) as viewer:
        _login(viewer, VIEWER)
        assert "only operators" in viewer.get(path).text
        refused = viewer.post(path + "/acknowledge", data={"csrf": _csrf(viewer), "note": "x"})
        assert refused.status_code == 403 and "viewer" in refused.text
    with _client(site) as op:
        _login(op, OPERATOR)
        assert op.post(path + "/acknowledge", data={"note": "no token"}).status_code == 403
        assert op.post(path + "/acknowledge", data={"csrf": "forged", "note": "x"}).status_code == 403
        assert operator_store.OperatorStore(site["store"]).alert(view.alert.alert_id).state == "open"
        done = op.post(path + "/acknowledge", data={"csrf": _csrf(op), "note": "guard sent"})
        assert done.status_code == 303 and done.headers["location"] == f"{path}?done=acknowledged"
        # Committed before the answer: a fresh connection to the store already has it.
        fresh = operator_store.OperatorStore(site["reopen"]())
        (action,) = fresh.alert(view.alert.alert_id).actions
        assert (action.action, action.username, action.role, action.note) == (
            "acknowledge",
            OPERATOR,
            "operator",
            "guard sent",
        )
        assert abs(action.at - time.time()) < 60
        page = op.get(done.headers["location"])
        assert (
            "guard sent" in page.text and 'id="acknowledge"' not in page.text and 'id="resolve"' in page.text
        )
        assert op.post(path + "/acknowledge", data={"csrf": _csrf(op)}).status_code == 409
        fresh.store.close()


def test_a_removed_account_loses_its_session(site):
    with _client(site) as client:
        _login(client, VIEWER)
        assert client.get("/").status_code == 200
        users = json.loads(site["users"].read_text())
        del users["users"][VIEWER]
        site["users"].write_text(json.dumps(users))
        assert client.get("/").status_code == 303


def test_csv_export_matches_the_store_and_the_api_and_privacy_panel_read_the_export(site, tmp_path):
    ops = operator_store.OperatorStore(site["store"])
    (view,) = ops.alerts()
    ops.record_action(view.alert.alert_id, "acknowledge", username=OPERATOR, role="operator", note="a, b")
    export = tmp_path / "ae" / "export"
    export.mkdir(parents=True)
    # A trainer's metrics.json as written (the numbers are the demo's; the panel must show them).
    metrics = {"optimizer": "dpadam", "private": True, "epsilon_pld": 0.308, "epsilon_rdp": 0.915,
               "delta": 1e-5, "unit_of_privacy": "frame", "accountants": "dp_accounting PLD",
               "mse": 0.01}  # fmt: skip
    (export.parent / "metrics.json").write_text(json.dumps(metrics))
    ops.put_live(
        "cam1", owner="srv", received_fps=1.0, scored_fps=1.0, frame_index=7, thumbnail=None,
        mechanism="redact_fill@0.8+ae", autoencoder=operator_store.autoencoder_summary(export),
    )  # fmt: skip
    with _client(site) as client:
        _login(client, VIEWER)
        rows = list(csv.DictReader(io.StringIO(client.get("/alerts.csv").text)))
        assert [(r["alert_id"], r["state"], r["camera_id"]) for r in rows] == [
            (view.alert.alert_id, "acknowledged", "cam1")
        ]
        assert float(rows[0]["peak_score"]) == pytest.approx(view.alert.peak_score, abs=1e-4)
        assert "a, b" in rows[0]["actions"] and OPERATOR in rows[0]["actions"]
        assert list(csv.DictReader(io.StringIO(client.get("/alerts.csv?since=2999-01-01").text))) == []
        assert client.get("/alerts.csv?since=yesterday").status_code == 400
        api = client.get("/api/alerts?camera=cam1").json()
        assert [a["alert_id"] for a in api] == [view.alert.alert_id] and api[0]["actions"][0][
            "note"
        ] == "a, b"
        privacy = client.get("/privacy").text
        assert "0.308 (PLD)" in privacy and "0.915 (RDP)" in privacy and "redact_fill@0.8+ae" in privacy
        assert "frame" in privacy and "not audited" in privacy
        timeline = client.get("/api/timeline/cam1?minutes=5").json()
        assert len(timeline["frames"]) == 8 and timeline["alerts"][0][2] == view.alert.alert_id


def _events(site, *, disconnect, on_event=None):
    """``/events`` through the ASGI app with a logged-in viewer's cookie; the client disconnects
    after the first event when ``disconnect``, else never (the server must end the stream)."""
    with _client(site) as client:
        _login(client, VIEWER)
        cookie = client.cookies.get("ppvad_console")
    sent, first = [], True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        while not disconnect or not any(b"data: " in m.get("body", b"") for m in sent):
            await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if on_event is not None and b"data: " in message.get("body", b""):
            on_event()

    scope = {"type": "http", "method": "GET", "path": "/events", "raw_path": b"/events", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"cookie", f"ppvad_console={cookie}".encode())],
             "scheme": "https", "server": ("testserver", 443), "client": ("127.0.0.1", 1), "root_path": "",
             "http_version": "1.1"}  # fmt: skip
    asyncio.run(asyncio.wait_for(site["app"](scope, receive, send), timeout=30))
    return sent


def test_the_event_stream_sends_the_cameras_and_alerts(site):
    """One Server-Sent Event read through the ASGI app (the browser test reads them live)."""
    sent = _events(site, disconnect=True)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert (
        start["status"] == 200 and (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    )
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    event = json.loads(body.split("data: ", 1)[1].split("\n\n", 1)[0])
    assert [c["camera_id"] for c in event["cameras"]] == ["cam1"]
    assert event["alerts"][0]["state"] == "open" and event["alerts"][0]["camera_id"] == "cam1"


def test_the_event_stream_of_a_removed_account_ends(site):
    """Removing a viewer while its camera page is open ends its stream (the client stays)."""

    def remove_viewer():
        users = json.loads(site["users"].read_text())
        users["users"].pop(VIEWER, None)
        site["users"].write_text(json.dumps(users))

    sent = _events(site, disconnect=False, on_event=remove_viewer)  # returns: the server ended it
    assert sum(b"data: " in m.get("body", b"") for m in sent) == 1


def test_accounts_hash_with_scrypt_and_refuse_bad_input(tmp_path):
    book = accounts.Accounts(tmp_path / "u.json")
    book.add("alice", "long enough password", "operator")
    stored = json.loads((tmp_path / "u.json").read_text())["users"]["alice"]
    assert "long enough" not in json.dumps(stored) and stored["scrypt"].startswith("16384$8$1$")
    assert (tmp_path / "u.json").stat().st_mode & 0o077 == 0
    assert book.authenticate("alice", "long enough password") == "operator"
    assert (
        book.authenticate("alice", "long enough passworD") is None and book.authenticate("bob", "x") is None
    )
    bad = [("a b", "long enough password", "viewer", "user name"), ("bob", "short", "viewer", "shorter"),
           ("bob", "long enough password", "admin", "role")]  # fmt: skip
    for name, password, role, match in bad:
        with pytest.raises(ValueError, match=match):
            book.add(name, password, role)
    assert dataclasses.is_dataclass(operator_store.Action)


def test_the_frame_header_carries_the_cameras_mechanism_and_refuses_a_bad_one():
    from ppvad_jax.serving import wire  # noqa: PLC0415

    latent = np.zeros((2, 3, 4), np.float16)
    frame = dict(camera_id="cam1", run_id="r", frame_index=0, timestamp=1.7e9, latent=latent)
    assert wire.decode_frame(wire.encode_frame(**frame, mechanism="redact_fill@0.8+ae")).mechanism == (
        "redact_fill@0.8+ae"
    )
    assert wire.decode_frame(wire.encode_frame(**frame)).mechanism == ""  # older cameras send none
    for bad in ("x" * (wire.MAX_MECHANISM_CHARS + 1), "ae\n<script>"):
        with pytest.raises(wire.WireError, match="mechanism"):
            wire.decode_frame(wire.encode_frame(**frame, mechanism=bad))


def test_the_camera_names_its_mechanism_in_the_frame_privacy_grammar(tmp_path):
    from ppvad_jax.models import face_redaction  # noqa: PLC0415
    from ppvad_jax.pipelines import frame_privacy  # noqa: PLC0415
    from ppvad_jax.serving import camera_encoder  # noqa: PLC0415
    from tests import serving_support  # noqa: PLC0415

    export = serving_support.make_tiny_export(tmp_path / "ae")
    plain = camera_encoder.CameraEncoder(export)
    redacting = camera_encoder.CameraEncoder(export, redactor=face_redaction.from_spec("blur@0.5"))
    assert (plain.mechanism, redacting.mechanism) == ("ae", "redact_blur@0.5+ae")
    parsed = frame_privacy.parse(redacting.mechanism)  # the evaluation's own reading of the name
    assert parsed.redaction_spec == "blur@0.5" and parsed.ae and parsed.ldp is None


def test_the_demos_live_site_gives_every_camera_a_normal_and_an_anomalous_test_video():
    from ppvad_jax.pipelines.demo import live  # noqa: PLC0415

    manifest = {
        "videos": [{"name": n, "class": c, "path": f"{c}/{n}.avi"} for n, c in
                   [("n1", "Normal"), ("n2", "Normal"), ("a1", "Assault"), ("a2", "Arrest"),
                    ("t", "Normal")]],
        "test": ["n1", "n2", "a1", "a2"],
    }  # fmt: skip
    playlists = live._playlists(manifest, 3)
    assert playlists == {"cam1": ["Normal/n1.avi", "Assault/a1.avi"],
                         "cam2": ["Arrest/a2.avi", "Normal/n2.avi"],
                         "cam3": ["Normal/n1.avi", "Assault/a1.avi"]}  # fmt: skip
    with pytest.raises(ValueError, match="normal and an anomalous"):
        live._playlists(dict(manifest, test=["n1", "n2"]), 2)


def test_an_acknowledgement_survives_a_restart_of_the_postgresql_server_and_the_store_reconnects():
    """The store's server crashes and comes back (an immediate stop): the committed action and
    the alert's state are there, and the same store object's next calls reconnect (a read is
    repeated once; a transaction found dead at BEGIN is begun on a new connection)."""
    from tests import postgres_support  # noqa: PLC0415

    if postgres_support.binaries() is None:
        pytest.skip("no PostgreSQL binaries (pgserver in requirements-dev.txt)")
    with postgres_support.temporary_server() as dsn:
        store = alert_store.PostgresAlertStore(dsn)
        _stream(store, "cam1", 8, start_time=time.time() - 3)
        ops = operator_store.OperatorStore(store)
        (view,) = ops.alerts()
        ops.record_action(
            view.alert.alert_id, "acknowledge", username=OPERATOR, role="operator", note="on it"
        )
        dsn.restart()
        got = ops.alert(view.alert.alert_id)  # a read on the dropped connection: reconnected
        assert got.state == "acknowledged"
        assert [(a.username, a.note) for a in got.actions] == [(OPERATOR, "on it")]
        dsn.restart()
        resolved = ops.record_action(view.alert.alert_id, "resolve", username=OPERATOR, role="operator")
        assert resolved == "resolved"  # a transaction on the dropped connection: reconnected
        dsn.restart()  # and the server's own write path: the next tick commits
        _stream(store, "cam1", 3, start_time=time.time())
        assert len(store.frame_results("cam1")) == 11
        store.close()
