"""Lists the alerts in a server's store, or exports them to CSV.

  python -m launch.alerts --db=runs/alerts.sqlite [--camera_id=cam1] [--csv=alerts.csv]
  python -m launch.alerts --dsn=postgresql://ppvad@db.internal:5432/alerts   # a shared store

Safe while the server runs (SQLite in WAL mode and PostgreSQL both let readers run beside the
server's writes). A SQLite file is opened read-only and refused unless it is an alert store
(nothing is ever added to it). A stored row that cannot be shown (a time outside what a date can
hold, a non-number) is printed as INVALID with its raw values; the other rows are listed as usual.
"""

import csv
import dataclasses
import datetime
import math

from absl import app, flags

from ppvad_jax.serving import alert_store

_DB = flags.DEFINE_string("db", None, "The server's SQLite store.")
_DSN = flags.DEFINE_string("dsn", None, "The servers' PostgreSQL store (password from PGPASSWORD).")
_CAMERA = flags.DEFINE_string("camera_id", None, "Only this camera's alerts.")
_CSV = flags.DEFINE_string("csv", None, "Write the alerts to this CSV file instead of listing them.")


def _time(t):
    if not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"time {t!r} is not a finite number")
    return datetime.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds")


def format_alert(a):
    """One line for an alert; an INVALID line with the raw row if a field cannot be shown."""
    try:
        state = "OPEN  " if a.is_open else "closed"
        return (
            f"{state} {a.camera_id:10s} frames {a.start_frame}-{a.end_frame} "
            f"{_time(a.start_time)} -> {_time(a.end_time)}  peak {float(a.peak_score):.3f}  {a.alert_id}"
        )
    except (ValueError, OverflowError, OSError, TypeError) as e:  # what a bad stored value raises
        return f"INVALID {a.alert_id!r}: {e}; raw {dataclasses.astuple(a)}"


def open_reader(db=None, dsn=None):
    """The store to read: PostgreSQL at ``dsn``, or the SQLite file ``db`` read-only."""
    if (db is None) == (dsn is None):
        raise app.UsageError("give exactly one of --db (SQLite file) and --dsn (PostgreSQL)")
    if dsn:
        return alert_store.PostgresAlertStore(dsn)
    try:
        return alert_store.open_sqlite_reader(db)
    except alert_store.NotAnAlertStore as e:
        raise app.UsageError(str(e)) from e


def report(store, camera_id=None, csv_path=None):
    """The lines ``main`` prints; writes ``csv_path`` instead of listing when given."""
    alerts = store.list_alerts(camera_id)
    if csv_path:
        fields = [f.name for f in dataclasses.fields(alert_store.Alert)]
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(dataclasses.asdict(a) for a in alerts)
        return [f"wrote {len(alerts)} alert(s) to {csv_path}"]
    lines = [format_alert(a) for a in alerts]
    invalid = sum(line.startswith("INVALID") for line in lines)
    head = f"{len(alerts)} alert(s)" + (f", {invalid} invalid" if invalid else "")
    return [head, *lines]


def main(argv):
    del argv
    store = open_reader(_DB.value, _DSN.value)
    try:
        lines = report(store, _CAMERA.value, _CSV.value)
    finally:
        store.close()
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
