"""The alert store's contract, run against SQLite and against a real PostgreSQL server.

PostgreSQL comes from tests/postgres_support.py (the pgserver wheel in requirements-dev.txt,
or a system install): one throwaway server for the session (conftest's ``postgres_server``),
one fresh database per test.
"""

import csv
import dataclasses
import sqlite3
import subprocess
import sys
import threading
import uuid

import ml_collections
import pytest

from ppvad_jax.serving import alert_store, camera_state
from tests import postgres_support


def _tick(n, *, camera="cam1", start=0, state=None, run_id="r", confidence=1.0):
    params = camera_state.SasParams()
    state = state or camera_state.initial_state(camera, params)
    results, alerts = [], {}
    for i in range(start, start + n):
        state, result, alert = camera_state.advance(
            state,
            confidence=confidence,
            run_id=run_id,
            frame_index=i,
            timestamp=1.7e9 + i / 10,
            params=params,
        )
        results.append(result)
        if alert:
            alerts[alert.alert_id] = alert
    return state, results, list(alerts.values())


def _new_database(server_dsn):
    """DSN of a fresh, empty database on the test server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = alert_store.PostgresAlertStore(server_dsn)
    admin._run(f"CREATE DATABASE {name}")
    admin.close()
    return server_dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def open_new(request, tmp_path):
    """``open_new()`` opens the test's store (again, on later calls): same file or database."""
    if request.param == "sqlite":
        yield lambda **kw: alert_store.SqliteAlertStore(tmp_path / "a.sqlite", **kw)
        return
    dsn = _new_database(request.getfixturevalue("postgres_server"))
    yield lambda **kw: alert_store.PostgresAlertStore(dsn, **kw)


def test_a_committed_tick_is_restored_by_a_new_instance(open_new):
    store = open_new()
    state, results, alerts = _tick(5)
    store.commit_tick(results, [state], alerts)
    store.close()
    again = open_new()
    restored = again.load_states()["cam1"]
    assert restored == state and restored.open_alert.start_frame == 3
    assert again.lookup_result("cam1", "r", 4) == results[4]
    assert again.lookup_result("cam1", "r", 5) is None
    assert [a.alert_id for a in again.list_alerts()] == ["cam1:r:3"]
    assert again.frame_results("cam1") == results
    again.close()


def test_an_alert_is_extended_and_closed_in_place(open_new):
    store = open_new()
    state, first, alerts = _tick(6)
    store.commit_tick(first, [state], alerts)
    assert store.list_alerts()[0].is_open
    state, results, alerts = _tick(12, start=6, state=state, confidence=0.0)
    store.commit_tick(results, [state], alerts)
    (alert,) = store.list_alerts()
    closed = next(r for r in results if r.alert_event == "closed")
    assert not alert.is_open and (alert.start_frame, alert.end_frame) == (3, closed.frame_index - 1)
    assert alert.peak_score == max(r.score for r in first + results)
    assert store.load_states()["cam1"].open_alert is None
    store.close()


def test_a_failed_commit_writes_nothing(open_new):
    store = open_new()
    state, results, alerts = _tick(5)
    bad = dataclasses.replace(alerts[0], peak_score=None)  # NOT NULL: fails after the frame rows went in
    with pytest.raises(Exception, match="(?i)null"):
        store.commit_tick(results, [state], [bad])
    assert store.frame_results() == [] and store.list_alerts() == [] and store.load_states() == {}
    store.commit_tick(results, [state], alerts)  # the connection is usable after the rollback
    assert len(store.frame_results()) == 5
    store.close()


def test_a_resent_frame_keeps_its_first_result(open_new):
    store = open_new()
    state, results, alerts = _tick(3)
    store.commit_tick(results, [state], alerts)
    changed = dataclasses.replace(results[2], confidence=0.0, score=0.0)
    store.commit_tick([changed], [state], [])
    assert store.lookup_result("cam1", "r", 2) == results[2]
    assert len(store.frame_results()) == 3
    store.close()


def test_old_frame_results_are_pruned_but_alerts_stay(open_new):
    store = open_new(keep_results_s=1e-9, prune_every=2)
    state, results, alerts = _tick(5)
    store.commit_tick(results[:3], [state], alerts)
    store.commit_tick(results[3:], [state], [])  # second tick prunes everything older than now
    assert len(store.frame_results()) <= 2 and len(store.list_alerts()) == 1
    store.close()


def test_a_claim_fences_the_previous_owner_out_of_that_camera_only(open_new):
    store = open_new()
    state, results, alerts = _tick(5)
    assert store.claim("cam1", "server-a") is None  # nothing committed yet
    assert store.commit_tick(results, [state], alerts, owner="server-a") == set()
    assert store.claim("cam1", "server-b") == state  # the new owner reads the committed state
    assert store.owners()["cam1"] == ("server-b", 2)
    later, more, more_alerts = _tick(3, start=5, state=state)
    other, other_results, _ = _tick(2, camera="cam2")
    moved = store.commit_tick(more + other_results, [later, other], more_alerts, owner="server-a")
    assert moved == {"cam1"}
    assert store.load_states()["cam1"] == state  # server-a's stale write of cam1 did not land
    assert store.lookup_result("cam1", "r", 5) is None
    assert len(store.frame_results("cam2")) == 2  # its unclaimed camera in the same tick did
    assert store.commit_tick(more, [later], more_alerts, owner="server-b") == set()
    assert store.load_states()["cam1"] == later
    store.close()


def test_servers_sharing_one_postgres_see_each_others_alerts(postgres_server):
    """Two servers (one per GPU behind a load balancer, cameras pinned by id) on one store:
    concurrent ticks of different cameras all land, and either server lists every alert."""
    stores = [alert_store.PostgresAlertStore(postgres_server) for _ in range(2)]
    cameras = [f"cam-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    errors = []

    def serve(store, camera):
        try:
            state = None
            for start in range(0, 40, 4):
                state, results, alerts = _tick(4, camera=camera, start=start, state=state)
                store.commit_tick(results, [state], alerts)
        except Exception as e:  # reported below, with the camera
            errors.append((camera, e))

    threads = [threading.Thread(target=serve, args=pair) for pair in zip(stores, cameras, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for store in stores:
        states = store.load_states()
        assert all(states[c].last_frame_index == 39 for c in cameras)
        assert {a.camera_id for a in store.list_alerts() if a.camera_id in cameras} == set(cameras)
        assert len(store.frame_results(cameras[0])) == 40
    for store in stores:
        store.close()


def test_two_servers_starting_together_create_the_tables_once(postgres_server):
    dsn = _new_database(postgres_server)
    opened, errors = [], []

    def start():
        try:
            opened.append(alert_store.PostgresAlertStore(dsn))
        except Exception as e:  # a CREATE TABLE race would surface here
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(opened) == 4
    for store in opened:
        store.close()


def test_doubles_survive_the_round_trip(open_new):
    """PostgreSQL's REAL is 4 bytes: timestamps must be stored as DOUBLE PRECISION."""
    store = open_new()
    state, results, alerts = _tick(1)
    store.commit_tick(results, [state], alerts)
    assert store.lookup_result("cam1", "r", 0).timestamp == 1.7e9
    store.close()


def test_sqlite_store_is_in_wal_mode(tmp_path):
    alert_store.SqliteAlertStore(tmp_path / "a.sqlite").close()
    assert sqlite3.connect(tmp_path / "a.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "dsn", ["sqlite:///a.db", "postgresql://host-only", "postgresql:///db", "alerts.sqlite"]
)
def test_a_malformed_dsn_is_refused_with_the_expected_form(dsn):
    with pytest.raises(ValueError, match="postgresql://user@host:port/database"):
        alert_store.parse_dsn(dsn)


def test_parse_dsn_reads_every_part_and_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "s3cret")
    assert alert_store.parse_dsn("postgresql://alerts@db.internal:6543/ppvad") == {
        "user": "alerts", "password": "s3cret", "host": "db.internal", "port": 6543, "database": "ppvad",
    }  # fmt: skip
    assert alert_store.parse_dsn("postgres://u:p%40ss@h/d")["password"] == "p@ss"


def test_an_unreachable_postgres_is_named_in_the_error():
    port = postgres_support._free_port()  # nothing listens there
    with pytest.raises(ConnectionError, match=f"postgres@127.0.0.1:{port}/alerts"):
        alert_store.PostgresAlertStore(f"postgresql://postgres@127.0.0.1:{port}/alerts", timeout_s=2)


def test_open_store_picks_the_configured_kind(tmp_path, postgres_server):
    config = ml_collections.ConfigDict(
        {"kind": "postgres", "dsn": postgres_server, "synchronous": "FULL", "keep_results_s": 60.0}
    )
    store = alert_store.open_store(config, tmp_path / "unused.sqlite")
    assert isinstance(store, alert_store.PostgresAlertStore) and not (tmp_path / "unused.sqlite").exists()
    store.close()
    config.kind = "mysql"
    with pytest.raises(ValueError, match="sqlite or postgres.*mysql"):
        alert_store.open_store(config, tmp_path / "unused.sqlite")


def test_launch_alerts_exports_a_postgres_store(tmp_path, postgres_server):
    store = alert_store.PostgresAlertStore(postgres_server)
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    state, results, alerts = _tick(6, camera=camera)
    store.commit_tick(results, [state], alerts)
    store.close()
    csv_path = tmp_path / "alerts.csv"
    run = subprocess.run(
        [sys.executable, "-m", "launch.alerts", f"--dsn={postgres_server}", f"--camera_id={camera}",
         f"--csv={csv_path}"],
        capture_output=True, text=True, cwd=postgres_support.ROOT, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["alert_id"], r["camera_id"], r["start_frame"]) for r in rows] == [
        (f"{camera}:r:3", camera, "3")
    ]
    both = subprocess.run(
        [sys.executable, "-m", "launch.alerts", f"--dsn={postgres_server}", "--db=x.sqlite"],
        capture_output=True, text=True, cwd=postgres_support.ROOT, timeout=60,
    )  # fmt: skip
    assert both.returncode != 0 and "exactly one of --db" in both.stderr
