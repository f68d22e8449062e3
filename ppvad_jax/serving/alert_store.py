"""Durable alerts, per-camera SAS state and per-frame results: ``AlertStore``.

The engine calls ``commit_tick`` once per micro-batch with every frame result,
the new camera states and the alerts opened, extended or closed, in one
transaction, and sends the tick's responses only after it returns. So an
alert a camera has been told about is on disk, and the SAS accumulator on
disk always matches the last acknowledged frame: a server killed with
``kill -9`` restarts from exactly the acknowledged state (tested in
tests/test_serving_restart.py and launch/fault_test.py).

Per-frame results are kept (``frame_results``) so a frame resent after a
reconnect (the camera never saw its response) is answered from the store
instead of being scored twice, which would step the SAS twice. They are
pruned after ``keep_results_s`` (about 150 bytes a row: 10 FPS is 130 MB per
camera-day; the default keeps one hour).

SQLite (the default, ``SqliteAlertStore``): WAL journal, so readers such as
``launch.alerts`` never block the server; ``synchronous=FULL`` by default,
one fsync per tick (not per frame), which survives power loss; ``NORMAL``
survives a process crash only and saves the fsync.

PostgreSQL (interface only, not implemented here): when several servers
share one store, a ``PostgresAlertStore`` implements the same five methods
over the same three tables (``REAL`` -> ``DOUBLE PRECISION``), with
``commit_tick`` as one transaction of ``INSERT ... ON CONFLICT (alert_id) DO
UPDATE`` for alerts, ``INSERT ... ON CONFLICT (camera_id) DO UPDATE`` for
camera states and a plain insert (or ``COPY``) for frame results; reads of a
camera's state at session start with ``SELECT ... FOR UPDATE`` (or a
``pg_advisory_lock(hashtext(camera_id))`` held by the session) so that a
stale server that still thinks it owns a camera cannot overwrite the state
of the one the load balancer moved it to. Select it with
``config.store.kind = "postgres"`` and a DSN; psycopg would be the one new
dependency.
"""

import sqlite3
import threading
import time
from typing import Protocol

from ppvad_jax.serving.camera_state import Alert, CameraState, FrameResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  alert_id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, run_id TEXT NOT NULL,
  start_frame INTEGER NOT NULL, start_time REAL NOT NULL,
  end_frame INTEGER NOT NULL, end_time REAL NOT NULL,
  peak_score REAL NOT NULL, is_open INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_by_camera ON alerts (camera_id, start_time);
CREATE TABLE IF NOT EXISTS camera_state (
  camera_id TEXT PRIMARY KEY, accumulator REAL NOT NULL, run_id TEXT NOT NULL,
  last_frame_index INTEGER NOT NULL, last_time REAL NOT NULL, open_alert_id TEXT,
  updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS frame_results (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id TEXT NOT NULL, run_id TEXT NOT NULL, frame_index INTEGER NOT NULL, timestamp REAL NOT NULL,
  confidence REAL NOT NULL, accumulator REAL NOT NULL, score REAL NOT NULL,
  alert_id TEXT, alert_event TEXT, committed_at REAL NOT NULL,
  UNIQUE (camera_id, run_id, frame_index));
"""

_ALERT_COLUMNS = (
    "alert_id, camera_id, run_id, start_frame, start_time, end_frame, end_time, peak_score, is_open"
)
_RESULT_COLUMNS = (
    "camera_id, run_id, frame_index, timestamp, confidence, accumulator, score, alert_id, alert_event"
)


class AlertStore(Protocol):
    """Where the server keeps what must survive it. Every method may be called from any thread."""

    def load_states(self) -> dict[str, CameraState]:
        """Every camera's last committed state, open alert included."""

    def lookup_result(self, camera_id: str, run_id: str, frame_index: int) -> FrameResult | None:
        """The committed result of one frame, if it was processed (and not pruned)."""

    def commit_tick(self, results: list[FrameResult], states: list[CameraState], alerts: list[Alert]) -> None:
        """Writes all of it in one transaction; returns only once it is durable."""

    def list_alerts(self, camera_id: str | None = None) -> list[Alert]:
        """Alerts by start time, open and closed."""

    def close(self) -> None: ...


def _alert(row):
    return Alert(*row[:8], is_open=bool(row[8]))


class SqliteAlertStore:
    """``AlertStore`` in one SQLite file (WAL). See the module docstring."""

    def __init__(self, path, *, synchronous="FULL", keep_results_s=3600.0, prune_every=200):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._keep_results_s = keep_results_s
        self._prune_every = prune_every
        self._ticks = 0

    def load_states(self):
        with self._lock:
            alerts = {
                row[0]: _alert(row)
                for row in self._db.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE is_open = 1")
            }
            rows = self._db.execute(
                "SELECT camera_id, accumulator, run_id, last_frame_index, last_time, open_alert_id "
                "FROM camera_state"
            ).fetchall()
        return {
            camera: CameraState(camera, accumulator, run_id, last_frame, last_time, alerts.get(alert_id))
            for camera, accumulator, run_id, last_frame, last_time, alert_id in rows
        }

    def lookup_result(self, camera_id, run_id, frame_index):
        with self._lock:
            row = self._db.execute(
                f"SELECT {_RESULT_COLUMNS} FROM frame_results "
                "WHERE camera_id=? AND run_id=? AND frame_index=?",
                (camera_id, run_id, frame_index),
            ).fetchone()
        return FrameResult(*row) if row else None

    def commit_tick(self, results, states, alerts):
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    f"INSERT OR IGNORE INTO frame_results ({_RESULT_COLUMNS}, committed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.camera_id, r.run_id, r.frame_index, r.timestamp, r.confidence, r.accumulator)
                        + (r.score, r.alert_id, r.alert_event, now)
                        for r in results
                    ],
                )
                db.executemany(
                    f"INSERT INTO alerts ({_ALERT_COLUMNS}, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (alert_id) DO UPDATE SET end_frame=excluded.end_frame, "
                    "end_time=excluded.end_time, peak_score=excluded.peak_score, is_open=excluded.is_open, "
                    "updated_at=excluded.updated_at",
                    [
                        (a.alert_id, a.camera_id, a.run_id, a.start_frame, a.start_time, a.end_frame)
                        + (a.end_time, a.peak_score, int(a.is_open), now)
                        for a in alerts
                    ],
                )
                db.executemany(
                    "INSERT INTO camera_state (camera_id, accumulator, run_id, last_frame_index, last_time, "
                    "open_alert_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (camera_id) DO UPDATE SET accumulator=excluded.accumulator, "
                    "run_id=excluded.run_id, "
                    "last_frame_index=excluded.last_frame_index, last_time=excluded.last_time, "
                    "open_alert_id=excluded.open_alert_id, updated_at=excluded.updated_at",
                    [
                        (s.camera_id, s.accumulator, s.run_id, s.last_frame_index, s.last_time)
                        + (s.open_alert.alert_id if s.open_alert else None, now)
                        for s in states
                    ],
                )
                self._ticks += 1
                if self._keep_results_s and self._ticks % self._prune_every == 0:
                    db.execute(
                        "DELETE FROM frame_results WHERE committed_at < ?", (now - self._keep_results_s,)
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def list_alerts(self, camera_id=None):
        query = f"SELECT {_ALERT_COLUMNS} FROM alerts"
        args = ()
        if camera_id is not None:
            query += " WHERE camera_id = ?"
            args = (camera_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY start_time, alert_id", args).fetchall()
        return [_alert(row) for row in rows]

    def frame_results(self, camera_id=None):
        """Committed per-frame results in commit order (for audits and the fault test)."""
        query = f"SELECT {_RESULT_COLUMNS} FROM frame_results"
        args = ()
        if camera_id is not None:
            query += " WHERE camera_id = ?"
            args = (camera_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [FrameResult(*row) for row in rows]

    def close(self):
        with self._lock:
            self._db.close()


def open_store(store_config, db_path):
    """The store ``config.store`` names, at ``db_path``."""
    if store_config.kind == "sqlite":
        return SqliteAlertStore(
            db_path, synchronous=store_config.synchronous, keep_results_s=store_config.keep_results_s
        )
    raise ValueError(
        f"store kind {store_config.kind!r} is not implemented (sqlite; postgres: see alert_store)"
    )
