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

Two implementations run the same SQL (``INSERT ... ON CONFLICT``, which both
speak) over the same four tables, and pass the same tests
(tests/test_alert_store.py):

- SQLite (the default, ``SqliteAlertStore``): one file, WAL journal, so
  readers such as ``launch.alerts`` never block the server;
  ``synchronous=FULL`` by default, one fsync per tick (not per frame), which
  survives power loss; ``NORMAL`` survives a process crash only and saves the
  fsync.
- PostgreSQL (``PostgresAlertStore``, ``config.store.kind = "postgres"`` and
  ``config.store.dsn``): when several servers must share one store, e.g. one
  server process per GPU behind a load balancer. Each tick is one transaction
  committed with PostgreSQL's default ``synchronous_commit=on`` (durable on the
  database server before the camera is answered). The driver is pg8000 (pure
  Python, no libpq).

Fencing (both stores): when a camera's stream opens, its server ``claim``s it
(``camera_owner``: owner and an epoch bumped on every claim), then reads its
state, which no other server can change once the claim has committed. Every
``commit_tick`` re-reads the owners of the tick's cameras inside its
transaction (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already excludes other writers) and writes nothing for a camera claimed by
another server since: a stale server (partitioned, still draining) cannot
overwrite the SAS state or alerts of the server the load balancer moved the
camera to. Cost: one indexed read per tick.
"""

import contextlib
import os
import pathlib
import sqlite3
import threading
import time
import urllib.parse
from typing import Protocol

from ppvad_jax.serving.camera_state import Alert, CameraState, FrameResult

# Written once for both databases; ``{real}``, ``{seq}`` and ``{blob}`` are the spellings that
# differ (SQLite's REAL is 8 bytes, PostgreSQL's 4: times need DOUBLE PRECISION there). The last
# three tables are the operator console's (``serving.operator_store``): who acknowledged or
# resolved which alert, each camera's live counters and latest reconstruction thumbnail, and a
# strip of thumbnails per alert.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  alert_id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, run_id TEXT NOT NULL,
  start_frame BIGINT NOT NULL, start_time {real} NOT NULL,
  end_frame BIGINT NOT NULL, end_time {real} NOT NULL,
  peak_score {real} NOT NULL, is_open INTEGER NOT NULL, updated_at {real} NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_by_camera ON alerts (camera_id, start_time);
CREATE TABLE IF NOT EXISTS camera_state (
  camera_id TEXT PRIMARY KEY, accumulator {real} NOT NULL, run_id TEXT NOT NULL,
  last_frame_index BIGINT NOT NULL, last_time {real} NOT NULL, open_alert_id TEXT,
  updated_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS frame_results (
  seq {seq},
  camera_id TEXT NOT NULL, run_id TEXT NOT NULL, frame_index BIGINT NOT NULL, timestamp {real} NOT NULL,
  confidence {real} NOT NULL, accumulator {real} NOT NULL, score {real} NOT NULL,
  alert_id TEXT, alert_event TEXT, committed_at {real} NOT NULL,
  UNIQUE (camera_id, run_id, frame_index));
CREATE INDEX IF NOT EXISTS frame_results_by_time ON frame_results (camera_id, timestamp);
CREATE TABLE IF NOT EXISTS camera_owner (
  camera_id TEXT PRIMARY KEY, owner TEXT NOT NULL, epoch BIGINT NOT NULL, claimed_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS alert_actions (
  seq {seq}, alert_id TEXT NOT NULL, action TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL,
  note TEXT NOT NULL, at {real} NOT NULL);
CREATE INDEX IF NOT EXISTS alert_actions_by_alert ON alert_actions (alert_id, seq);
CREATE TABLE IF NOT EXISTS camera_live (
  camera_id TEXT PRIMARY KEY, owner TEXT NOT NULL, received_fps {real} NOT NULL, scored_fps {real} NOT NULL,
  frame_index BIGINT NOT NULL, thumbnail {blob}, mechanism TEXT NOT NULL, autoencoder TEXT NOT NULL,
  updated_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS alert_frames (
  alert_id TEXT NOT NULL, frame_index BIGINT NOT NULL, timestamp {real} NOT NULL, thumbnail {blob} NOT NULL,
  PRIMARY KEY (alert_id, frame_index));
"""

ALERT_COLUMNS = (
    "alert_id, camera_id, run_id, start_frame, start_time, end_frame, end_time, peak_score, is_open"
)
_RESULT_COLUMNS = (
    "camera_id, run_id, frame_index, timestamp, confidence, accumulator, score, alert_id, alert_event"
)
_INSERT_RESULTS = (
    f"INSERT INTO frame_results ({_RESULT_COLUMNS}, committed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_ALERTS = (
    f"INSERT INTO alerts ({ALERT_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (alert_id) DO UPDATE SET end_frame=excluded.end_frame, end_time=excluded.end_time, "
    "peak_score=excluded.peak_score, is_open=excluded.is_open, updated_at=excluded.updated_at"
)
_CLAIM = (
    "INSERT INTO camera_owner (camera_id, owner, epoch, claimed_at) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (camera_id) DO UPDATE SET owner=excluded.owner, epoch=camera_owner.epoch + 1, "
    "claimed_at=excluded.claimed_at"
)
_UPSERT_STATES = (
    "INSERT INTO camera_state (camera_id, accumulator, run_id, last_frame_index, last_time, "
    "open_alert_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (camera_id) DO UPDATE SET accumulator=excluded.accumulator, run_id=excluded.run_id, "
    "last_frame_index=excluded.last_frame_index, last_time=excluded.last_time, "
    "open_alert_id=excluded.open_alert_id, updated_at=excluded.updated_at"
)


class AlertStore(Protocol):
    """Where the server keeps what must survive it. Every method may be called from any thread."""

    def load_states(self, cameras: list[str] | None = None) -> dict[str, CameraState]:
        """Every camera's (or these cameras') last committed state, open alert included."""

    def lookup_result(self, camera_id: str, run_id: str, frame_index: int) -> FrameResult | None:
        """The committed result of one frame, if it was processed (and not pruned)."""

    def claim(self, camera_id: str, owner: str) -> CameraState | None:
        """Makes ``owner`` (one server) the camera's writer and returns its committed state."""

    def commit_tick(
        self,
        results: list[FrameResult],
        states: list[CameraState],
        alerts: list[Alert],
        owner: str | None = None,
    ) -> set[str]:
        """Writes all of it in one transaction; returns only once it is durable. With ``owner``,
        rows of cameras another server has claimed since are not written: their ids are returned."""

    def list_alerts(self, camera_id: str | None = None) -> list[Alert]:
        """Alerts by start time, open and closed."""

    def close(self) -> None: ...


def alert_from_row(row):
    """An ``Alert`` from a row of ``ALERT_COLUMNS``."""
    return Alert(*row[:8], is_open=bool(row[8]))


def _camera_in(cameras):
    """`` AND camera_id IN (?, ...)`` for these cameras (bound as arguments, never inlined)."""
    return f" AND camera_id IN ({', '.join('?' * len(cameras))})"


def _where_camera(query, camera_id):
    return (query + " WHERE camera_id = ?", (camera_id,)) if camera_id is not None else (query, ())


class _SqlAlertStore:
    """The five ``AlertStore`` methods over a DB-API connection in autocommit mode, with explicit
    transactions; subclasses connect and say how a write transaction begins."""

    _placeholder = "?"
    _begin = "BEGIN"
    _for_update = ""  # SQLite: BEGIN IMMEDIATE already holds the write lock

    def __init__(self, connection, *, keep_results_s, prune_every):
        self._lock = threading.Lock()
        self._db = connection
        self._keep_results_s = keep_results_s
        self._prune_every = prune_every
        self._ticks = 0

    def _run(self, sql, args=()):
        cursor = self._db.cursor()
        cursor.execute(sql.replace("?", self._placeholder), args)
        return cursor

    def _lost(self, error):
        """Whether ``error`` says the connection to the database is gone (PostgreSQL only)."""
        del error
        return False

    def _reconnect(self):
        raise NotImplementedError

    def _rows(self, sql, args=()):
        with self._lock:
            try:
                return self._run(sql, args).fetchall()
            except Exception as e:
                if not self._lost(e):
                    raise
                self._reconnect()  # a read is safe to repeat once on a new connection
                return self._run(sql, args).fetchall()

    @contextlib.contextmanager
    def _transaction(self):
        """Holds the lock; commits on success, rolls back on any exception. A connection found
        dead at BEGIN is replaced first (nothing was done yet); one lost mid-transaction fails
        this transaction (the caller retries it) and is replaced for the next."""
        with self._lock:
            try:
                self._run(self._begin)
            except Exception as e:
                if not self._lost(e):
                    raise
                self._reconnect()
                self._run(self._begin)
            try:
                yield
                self._run("COMMIT")  # inside: a failed commit is rolled back too, never left open
            except BaseException as e:
                if self._lost(e):
                    self._reconnect()  # the server rolled the transaction back already
                    raise
                self._run("ROLLBACK")
                raise

    def load_states(self, cameras=None):
        if cameras is not None and not cameras:
            return {}
        alerts_sql = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE is_open = 1"
        states_sql = (
            "SELECT camera_id, accumulator, run_id, last_frame_index, last_time, open_alert_id "
            "FROM camera_state WHERE 1 = 1"
        )
        args = ()
        if cameras is not None:
            alerts_sql, states_sql = alerts_sql + _camera_in(cameras), states_sql + _camera_in(cameras)
            args = tuple(cameras)
        with self._transaction():  # one snapshot for both reads
            open_alerts = self._run(alerts_sql, args).fetchall()
            rows = self._run(states_sql, args).fetchall()
        alerts = {row[0]: alert_from_row(row) for row in open_alerts}
        return {
            camera: CameraState(camera, accumulator, run_id, last_frame, last_time, alerts.get(alert_id))
            for camera, accumulator, run_id, last_frame, last_time, alert_id in rows
        }

    def lookup_result(self, camera_id, run_id, frame_index):
        rows = self._rows(
            f"SELECT {_RESULT_COLUMNS} FROM frame_results WHERE camera_id=? AND run_id=? AND frame_index=?",
            (camera_id, run_id, frame_index),
        )
        return FrameResult(*rows[0]) if rows else None

    def claim(self, camera_id, owner):
        with self._transaction():
            self._run(_CLAIM, (camera_id, owner, time.time()))
        return self.load_states([camera_id]).get(camera_id)

    def owners(self):
        """``{camera_id: (owner, epoch)}`` of every claimed camera."""
        return {c: (o, e) for c, o, e in self._rows("SELECT camera_id, owner, epoch FROM camera_owner")}

    def _moved(self, cameras, owner):
        """Cameras among these that another owner has claimed (read inside the transaction)."""
        if owner is None or not cameras:
            return set()
        sql = "SELECT camera_id, owner FROM camera_owner WHERE 1 = 1" + _camera_in(cameras) + self._for_update
        rows = self._run(sql, tuple(cameras)).fetchall()
        return {camera for camera, holder in rows if holder != owner}

    def commit_tick(self, results, states, alerts, owner=None):
        now = time.time()
        # (camera, row) pairs are built before the transaction opens, so a bad item fails with
        # nothing written.
        rows = {
            _INSERT_RESULTS: [
                (r.camera_id, (r.camera_id, r.run_id, r.frame_index, r.timestamp, r.confidence)
                 + (r.accumulator, r.score, r.alert_id, r.alert_event, now))
                for r in results
            ],
            _UPSERT_ALERTS: [
                (a.camera_id, (a.alert_id, a.camera_id, a.run_id, a.start_frame, a.start_time)
                 + (a.end_frame, a.end_time, a.peak_score, int(a.is_open), now))
                for a in alerts
            ],
            _UPSERT_STATES: [
                (s.camera_id, (s.camera_id, s.accumulator, s.run_id, s.last_frame_index, s.last_time)
                 + (s.open_alert.alert_id if s.open_alert else None, now))
                for s in states
            ],
        }  # fmt: skip
        cameras = sorted({camera for pairs in rows.values() for camera, _ in pairs})
        with self._transaction():
            moved = self._moved(cameras, owner)
            for sql, pairs in rows.items():
                values = [row for camera, row in pairs if camera not in moved]
                if values:
                    self._db.cursor().executemany(sql.replace("?", self._placeholder), values)
            self._ticks += 1
            if self._keep_results_s and self._ticks % self._prune_every == 0:
                self._run("DELETE FROM frame_results WHERE committed_at < ?", (now - self._keep_results_s,))
        return moved

    def list_alerts(self, camera_id=None):
        query, args = _where_camera(f"SELECT {ALERT_COLUMNS} FROM alerts", camera_id)
        return [alert_from_row(row) for row in self._rows(query + " ORDER BY start_time, alert_id", args)]

    def frame_results(self, camera_id=None):
        """Committed per-frame results in commit order (for audits and the fault test)."""
        query, args = _where_camera(f"SELECT {_RESULT_COLUMNS} FROM frame_results", camera_id)
        return [FrameResult(*row) for row in self._rows(query + " ORDER BY seq", args)]

    def close(self):
        with self._lock:
            self._db.close()


class SqliteAlertStore(_SqlAlertStore):
    """``AlertStore`` in one SQLite file (WAL). See the module docstring."""

    _begin = "BEGIN IMMEDIATE"  # take the write lock now, not at the first write

    def __init__(self, path, *, synchronous="FULL", keep_results_s=3600.0, prune_every=200):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = str(path)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(_SCHEMA.format(real="REAL", seq="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB"))
        super().__init__(db, keep_results_s=keep_results_s, prune_every=prune_every)


class NotAnAlertStore(ValueError):
    """A file a reader was pointed at that is not a readable alert store."""


class SqliteAlertReader(SqliteAlertStore):
    """A read-only view of an existing SQLite store, for operator tools (``launch.alerts``).

    Opened with ``mode=ro``: it never creates tables, changes the journal mode or writes, so
    pointing ``launch.alerts`` at the wrong file leaves that file as it was (the
    read-write constructor added the tables and switched it to WAL). Raises NotAnAlertStore,
    naming the file, for anything that is not an alert store. Its reads are the store's own
    (``list_alerts``, ``frame_results``, ``lookup_result``); a write fails (read-only)."""

    _begin = "BEGIN"  # a read transaction: IMMEDIATE would ask for the write lock

    def __init__(self, path):  # noqa: PLW0231 (the read-write constructor would write)
        path = pathlib.Path(path)
        if not path.is_file():
            raise NotAnAlertStore(f"{path}: no such file")
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, isolation_level=None,
            timeout=30.0,
        )  # fmt: skip
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
        except sqlite3.DatabaseError as e:
            db.close()
            raise NotAnAlertStore(f"{path}: not an SQLite database ({e})") from e
        missing = set(ALERT_COLUMNS.split(", ")) - columns
        if missing:
            db.close()
            raise NotAnAlertStore(
                f"{path}: not an alert store (no alerts table with {', '.join(sorted(missing))}); "
                "point --db at the file launch.serve writes"
            )
        self.path = str(path)
        _SqlAlertStore.__init__(self, db, keep_results_s=0, prune_every=1)


def open_sqlite_reader(path):
    """``SqliteAlertReader(path)``: the store at ``path``, read-only."""
    return SqliteAlertReader(path)


_SCHEMA_LOCK = 0x70707661  # advisory lock id: servers starting together create the tables once


def parse_dsn(dsn):
    """``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`` -> pg8000 ``connect`` arguments.

    The password may instead come from ``PGPASSWORD``, so it need not sit in a config or a
    process listing."""
    url = urllib.parse.urlsplit(dsn)
    if url.scheme not in ("postgresql", "postgres") or not url.hostname or not url.path.strip("/"):
        raise ValueError(
            f"PostgreSQL store DSN must look like postgresql://user@host:port/database, got {dsn!r}"
        )
    return {
        "user": urllib.parse.unquote(url.username or "postgres"),
        "password": urllib.parse.unquote(url.password) if url.password else os.environ.get("PGPASSWORD"),
        "host": url.hostname,
        "port": url.port or 5432,
        "database": url.path.strip("/"),
    }


class PostgresAlertStore(_SqlAlertStore):
    """``AlertStore`` in a PostgreSQL database shared by several servers. See the module docstring."""

    _placeholder = "%s"
    _for_update = " FOR UPDATE"  # a concurrent claim waits for this tick, or this tick for it

    def _connect(self):
        return _pg_connect(self._connect_args, self._timeout_s)

    def _lost(self, error):
        """pg8000 reports a dropped connection (the database server restarted, a network cut) as
        an InterfaceError or the socket's OSError; SQL errors are DatabaseErrors and are not."""
        import pg8000.exceptions  # noqa: PLC0415

        return isinstance(error, pg8000.exceptions.InterfaceError | OSError)

    def _reconnect(self):
        with contextlib.suppress(Exception):
            self._db.close()
        self._db = self._connect()

    def __init__(self, dsn, *, keep_results_s=3600.0, prune_every=200, timeout_s=10.0):
        try:
            import pg8000.dbapi  # noqa: F401, PLC0415 - only a PostgreSQL deployment needs the driver
        except ImportError as e:
            raise ImportError("the PostgreSQL alert store needs pg8000 (pip install pg8000)") from e
        args = parse_dsn(dsn)
        self._connect_args, self._timeout_s = args, timeout_s
        super().__init__(self._connect(), keep_results_s=keep_results_s, prune_every=prune_every)
        self.dsn = f"postgresql://{args['user']}@{args['host']}:{args['port']}/{args['database']}"
        schema = _SCHEMA.format(real="DOUBLE PRECISION", seq="BIGSERIAL PRIMARY KEY", blob="BYTEA")
        with self._lock:
            self._run("SELECT pg_advisory_lock(?)", (_SCHEMA_LOCK,))
            try:
                for statement in filter(str.strip, schema.split(";")):
                    self._run(statement)
            finally:
                self._run("SELECT pg_advisory_unlock(?)", (_SCHEMA_LOCK,))


def _pg_connect(args, timeout_s):
    import pg8000.dbapi  # noqa: PLC0415 - only a PostgreSQL deployment needs the driver

    try:
        db = pg8000.dbapi.connect(**args, timeout=timeout_s)
    except Exception as e:  # the driver's errors do not say which server it tried
        where = f"{args['user']}@{args['host']}:{args['port']}/{args['database']}"
        raise ConnectionError(f"cannot open the PostgreSQL alert store {where}: {e}") from e
    db.autocommit = True
    return db


def open_store(store_config, db_path):
    """The store ``config.store`` names: SQLite at ``db_path``, or PostgreSQL at ``store_config.dsn``."""
    if store_config.kind == "sqlite":
        return SqliteAlertStore(
            db_path, synchronous=store_config.synchronous, keep_results_s=store_config.keep_results_s
        )
    if store_config.kind == "postgres":
        return PostgresAlertStore(store_config.dsn, keep_results_s=store_config.keep_results_s)
    raise ValueError(f"store kind must be sqlite or postgres, got {store_config.kind!r}")
