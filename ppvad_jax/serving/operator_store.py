"""What the operator console reads and writes in the alert store, beside what the servers write.

Three tables of ``alert_store._SCHEMA``, so SQLite and PostgreSQL hold them alike:

- ``alert_actions``: every acknowledgement and resolution, with the operator, their role, a note
  and the time. An alert's workflow state is derived from them (``open`` until someone
  acknowledges it, then ``acknowledged``, then ``resolved``), never stored twice. An action is
  committed before the console answers, so it survives a restart of the console or the store.
- ``camera_live``: per camera, what only the server knows (frames received and scored per
  second, the latest reconstruction as a small JPEG, the camera's declared privacy mechanism and
  the autoencoder it is decoded with), written by ``LiveRecorder`` at most once a second a camera.
- ``alert_frames``: a strip of reconstruction thumbnails per alert (one a second while it is
  open, at most ``LiveRecorder.max_alert_frames``).

Only what the server already has is kept: reconstructions of latents (after the camera's face
redaction where it runs one), never a raw frame. Lag is the time from the frame's capture
timestamp (the camera's clock) to its commit (the server's): on separate machines it includes
their clock offset.
"""

import collections
import dataclasses
import json
import logging
import math
import pathlib
import threading
import time

import cv2
import numpy as np

from ppvad_jax.serving import alert_store
from ppvad_jax.serving.camera_state import Alert

log = logging.getLogger(__name__)

ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved"}
STATES = ("open", "acknowledged", "resolved")
# From which workflow states each action is allowed: a resolved alert stays resolved.
_ALLOWED_FROM = {"acknowledge": ("open",), "resolve": ("open", "acknowledged")}
SILENT_AFTER_S = 5.0
_ACTION_COLUMNS = "alert_id, action, username, role, note, at"
_LIVE_COLUMNS = "owner, received_fps, scored_fps, frame_index, mechanism, autoencoder"
_UPSERT_LIVE = (
    f"INSERT INTO camera_live (camera_id, {_LIVE_COLUMNS}, thumbnail, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (camera_id) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in [*_LIVE_COLUMNS.split(", "), "thumbnail", "updated_at"])
)  # a camera with no frame committed for this long is shown "silent"


class ActionRefused(ValueError):
    """An action the alert's state does not allow, or on an alert that does not exist."""


@dataclasses.dataclass(frozen=True)
class Action:
    alert_id: str
    action: str
    username: str
    role: str
    note: str
    at: float


@dataclasses.dataclass(frozen=True)
class AlertView:
    alert: Alert
    state: str  # "open" | "acknowledged" | "resolved"
    actions: tuple

    def as_dict(self):
        return dict(
            dataclasses.asdict(self.alert),
            state=self.state,
            actions=[dataclasses.asdict(a) for a in self.actions],
        )


def workflow_state(actions):
    """The state the actions leave an alert in (they are in commit order)."""
    state = "open"
    for a in actions:
        state = ACTIONS[a.action]
    return state


def camera_status(now, last_seen, claimed_at=None):
    """``connected``: a frame committed in the last SILENT_AFTER_S; ``reconnecting``: its stream
    was opened again (a server claimed it) after its last frame and no frame has come since;
    ``silent`` otherwise (since ``last_seen``)."""
    if now - last_seen <= SILENT_AFTER_S:
        return "connected"
    if claimed_at is not None and claimed_at > last_seen and now - claimed_at <= 60.0:
        return "reconnecting"
    return "silent"


def _percentile(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


class OperatorStore:
    """The console's queries over an ``alert_store`` store (SQLite or PostgreSQL)."""

    def __init__(self, store):
        self.store = store

    # --- alerts and their workflow ---------------------------------------------------------------

    def _actions_for(self, alert_ids):
        if not alert_ids:
            return {}
        marks = ", ".join("?" * len(alert_ids))
        rows = self.store._rows(
            f"SELECT {_ACTION_COLUMNS} FROM alert_actions WHERE alert_id IN ({marks}) ORDER BY seq",
            tuple(alert_ids),
        )
        out = {}
        for row in rows:
            out.setdefault(row[0], []).append(Action(*row))
        return out

    def alerts(self, *, camera_id=None, state=None, since=None, until=None, limit=500):
        """Alerts newest first, with their workflow state; filtered by camera, state, start time."""
        if state is not None and state not in STATES:
            raise ValueError(f"alert state must be one of {STATES}, got {state!r}")
        where, args = ["1 = 1"], []
        for clause, value in (
            ("camera_id = ?", camera_id),
            ("start_time >= ?", since),
            ("start_time < ?", until),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self.store._rows(
            f"SELECT {alert_store.ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
            f"ORDER BY start_time DESC, alert_id DESC LIMIT {int(limit)}",
            tuple(args),
        )
        alerts = [alert_store.alert_from_row(row) for row in rows]
        actions = self._actions_for([a.alert_id for a in alerts])
        views = [
            AlertView(a, workflow_state(actions.get(a.alert_id, [])), tuple(actions.get(a.alert_id, [])))
            for a in alerts
        ]
        return [v for v in views if state is None or v.state == state]

    def alert(self, alert_id):
        """One alert's view, or None."""
        rows = self.store._rows(
            f"SELECT {alert_store.ALERT_COLUMNS} FROM alerts WHERE alert_id = ?", (alert_id,)
        )
        if not rows:
            return None
        alert = alert_store.alert_from_row(rows[0])
        actions = self._actions_for([alert_id]).get(alert_id, [])
        return AlertView(alert, workflow_state(actions), tuple(actions))

    def record_action(self, alert_id, action, *, username, role, note="", now=None):
        """Commits one acknowledgement or resolution; returns the alert's new state.

        Raises ActionRefused for an unknown alert or an action its state does not allow (checked
        and written in one write transaction, so two operators cannot both resolve it)."""
        if action not in ACTIONS:
            raise ActionRefused(f"unknown action {action!r}; one of {tuple(ACTIONS)}")
        now = time.time() if now is None else now
        with self.store._transaction():
            found = self.store._run("SELECT alert_id FROM alerts WHERE alert_id = ?", (alert_id,)).fetchall()
            if not found:
                raise ActionRefused(f"no alert {alert_id!r}")
            rows = self.store._run(
                f"SELECT {_ACTION_COLUMNS} FROM alert_actions WHERE alert_id = ? ORDER BY seq",
                (alert_id,),
            ).fetchall()
            state = workflow_state([Action(*r) for r in rows])
            if state not in _ALLOWED_FROM[action]:
                raise ActionRefused(f"alert {alert_id} is {state}: it cannot be {ACTIONS[action]} now")
            self.store._run(
                f"INSERT INTO alert_actions ({_ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, action, username, role, note, now),
            )
        return ACTIONS[action]

    # --- cameras -----------------------------------------------------------------------------------

    def cameras(self, *, now=None, lag_window_s=60.0):
        """One dict per camera the store knows: status, rates, lag p50/p99 (frames captured in the
        last ``lag_window_s``, read through the (camera, timestamp) index), current SAS, mechanism."""
        now = time.time() if now is None else now
        states = {
            r[0]: r[1:]
            for r in self.store._rows(
                "SELECT camera_id, accumulator, last_frame_index, last_time, open_alert_id, updated_at "
                "FROM camera_state"
            )
        }
        live = {
            r[0]: r[1:]
            for r in self.store._rows(f"SELECT camera_id, {_LIVE_COLUMNS}, updated_at FROM camera_live")
        }
        since = now - lag_window_s
        lags = {
            camera: [c - t for t, c in self.store._rows(
                "SELECT timestamp, committed_at FROM frame_results WHERE camera_id = ? AND timestamp >= ?",
                (camera, since),
            )]
            for camera in set(states) | set(live)
        }  # fmt: skip
        claims = dict(self.store._rows("SELECT camera_id, claimed_at FROM camera_owner"))
        out = []
        for camera in sorted(set(states) | set(live)):
            accumulator, last_frame, last_time, open_alert, updated = states.get(camera, (None,) * 5)
            owner, received, scored, frame, mechanism, autoencoder, live_at = live.get(camera, (None,) * 7)
            seen = max(t for t in (updated, live_at) if t is not None)
            fresh = live_at is not None and now - live_at <= SILENT_AFTER_S
            out.append({
                "camera_id": camera,
                "status": camera_status(now, seen, claims.get(camera)),
                "last_seen": seen,
                "received_fps": received if fresh else 0.0,
                "scored_fps": scored if fresh else 0.0,
                "lag_p50_s": _percentile(lags.get(camera, []), 50),
                "lag_p99_s": _percentile(lags.get(camera, []), 99),
                "sas": _sigmoid(accumulator) if accumulator is not None else None,
                "open_alert_id": open_alert,
                "last_frame_index": last_frame,
                "mechanism": mechanism or "",
                "autoencoder": autoencoder or "",
                "server": owner or "",
            })  # fmt: skip
        return out

    def timeline(self, camera_id, *, since, until=None):
        """``[(timestamp, confidence, score, alert_id)]`` of a camera's frames, by time."""
        sql = (
            "SELECT timestamp, confidence, score, alert_id FROM frame_results "
            "WHERE camera_id = ? AND timestamp >= ?"
        )
        args = [camera_id, since]
        if until is not None:
            sql += " AND timestamp <= ?"
            args.append(until)
        return [tuple(r) for r in self.store._rows(sql + " ORDER BY timestamp LIMIT 20000", tuple(args))]

    def thumbnail(self, camera_id):
        rows = self.store._rows("SELECT thumbnail FROM camera_live WHERE camera_id = ?", (camera_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def alert_frames(self, alert_id):
        """``[(frame_index, timestamp)]`` of the alert's thumbnail strip."""
        rows = self.store._rows(
            "SELECT frame_index, timestamp FROM alert_frames WHERE alert_id = ? ORDER BY frame_index",
            (alert_id,),
        )
        return [tuple(r) for r in rows]

    def alert_frame(self, alert_id, frame_index):
        rows = self.store._rows(
            "SELECT thumbnail FROM alert_frames WHERE alert_id = ? AND frame_index = ?",
            (alert_id, int(frame_index)),
        )
        return bytes(rows[0][0]) if rows else None

    # --- what the server writes --------------------------------------------------------------------

    def put_live(
        self, camera_id, *, owner, received_fps, scored_fps, frame_index, thumbnail, mechanism, autoencoder
    ):
        with self.store._transaction():
            self.store._run(
                _UPSERT_LIVE,
                (camera_id, owner, received_fps, scored_fps, int(frame_index), mechanism, autoencoder)
                + (thumbnail, time.time()),
            )

    def add_alert_frame(self, alert_id, *, frame_index, timestamp, thumbnail, limit):
        """Adds one thumbnail to an alert's strip unless it already holds ``limit``."""
        with self.store._transaction():
            count = self.store._run(
                "SELECT COUNT(*) FROM alert_frames WHERE alert_id = ?", (alert_id,)
            ).fetchall()
            if count[0][0] < limit:
                self.store._run(
                    "INSERT INTO alert_frames (alert_id, frame_index, timestamp, thumbnail) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (alert_id, int(frame_index), float(timestamp), thumbnail),
                )


def jpeg(frame_rgb, *, quality=75):
    """A reconstruction (uint8 RGB) as JPEG bytes."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(np.asarray(frame_rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("cannot encode the thumbnail as JPEG")
    return data.tobytes()


class LiveRecorder:
    """The server's side of ``camera_live`` and ``alert_frames``: rates and thumbnails per camera.

    ``received(camera, mechanism)`` on every frame taken in, ``scored(...)`` after every commit.
    It writes a camera's row at most every ``every_s`` (one small transaction, about 5 KB of JPEG
    at 120x160), outside the tick's own transaction: a failure here is logged and never fails a
    frame, since the console's view is not what the camera's alerts depend on."""

    def __init__(self, store, *, owner, autoencoder, every_s=1.0, max_alert_frames=40, rate_window_s=5.0):
        self.operator = OperatorStore(store)
        self.owner, self.autoencoder = owner, autoencoder
        self.every_s, self.max_alert_frames, self.rate_window_s = every_s, max_alert_frames, rate_window_s
        self._lock = threading.Lock()
        # camera -> monotonic times of the frames received / scored in the last rate_window_s
        self._received, self._scored, self._mechanism = {}, {}, {}
        self._last_write = {}

    def _rate(self, times, now):
        """Frames per second over the window (or over the time since the first frame, if shorter)."""
        while times and now - times[0] > self.rate_window_s:
            times.popleft()
        span = min(self.rate_window_s, now - times[0]) if len(times) > 1 else 0.0
        return (len(times) - 1) / span if span > 0 else 0.0

    def received(self, camera_id, mechanism=""):
        with self._lock:
            self._received.setdefault(camera_id, collections.deque()).append(time.monotonic())
            self._mechanism[camera_id] = mechanism or self._mechanism.get(camera_id, "")

    def scored(self, frames):
        """After a commit: ``frames`` is ``[(camera, frame_index, timestamp, reconstruction,
        open alert id or None)]`` in commit order; each camera's latest may be written."""
        now = time.monotonic()
        latest = {}
        with self._lock:
            for frame in frames:
                latest[frame[0]] = frame
                self._scored.setdefault(frame[0], collections.deque()).append(now)
        for camera, frame in latest.items():
            if now - self._last_write.get(camera, -math.inf) < self.every_s:
                continue
            try:
                self._write(*frame, now)
            except Exception as e:  # the console's view only: never fail the frame for it
                log.warning("camera %s: live view not written: %s", camera, e)

    def _write(self, camera, frame_index, timestamp, reconstruction, alert_id, now):
        with self._lock:
            received = self._rate(self._received.get(camera, collections.deque()), now)
            scored = self._rate(self._scored.get(camera, collections.deque()), now)
            mechanism = self._mechanism.get(camera, "")
        self._last_write[camera] = now
        thumb = jpeg(reconstruction)
        self.operator.put_live(
            camera, owner=self.owner, received_fps=received, scored_fps=scored, frame_index=frame_index,
            thumbnail=thumb, mechanism=mechanism, autoencoder=self.autoencoder,
        )  # fmt: skip
        if alert_id:
            self.operator.add_alert_frame(
                alert_id,
                frame_index=frame_index,
                timestamp=timestamp,
                thumbnail=thumb,
                limit=self.max_alert_frames,
            )


def autoencoder_summary(export_dir):
    """JSON for the console's privacy panel: the export and its trainer's privacy fields.

    Read from ``export_dir/../metrics.json`` (what the trainer computed for the run that made
    these weights, its audit included when canaries were run), never typed in; ``{"export": ...}``
    alone when there is no such file (an export copied without its workdir)."""
    export = pathlib.Path(export_dir)
    summary = {"export": str(export)}
    metrics_path = export.parent / "metrics.json"
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except (OSError, ValueError) as e:
            summary["error"] = f"{metrics_path}: {e}"
        else:
            summary["training"] = {k: metrics[k] for k in _PRIVACY_KEYS if k in metrics}
            summary["training"]["source"] = str(metrics_path)
    return json.dumps(summary, sort_keys=True, default=str)


_PRIVACY_KEYS = (
    "optimizer", "private", "epsilon_pld", "epsilon_rdp", "delta", "unit_of_privacy", "protects",
    "accountants", "noise_multiplier", "steps", "audit", "init_training_data",
)  # fmt: skip
