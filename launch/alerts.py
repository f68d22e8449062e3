"""Lists the alerts in a server's store, or exports them to CSV.

  python -m launch.alerts --db=runs/alerts.sqlite [--camera_id=cam1] [--csv=alerts.csv]
  python -m launch.alerts --dsn=postgresql://ppvad@db.internal:5432/alerts   # a shared store

Safe while the server runs (SQLite in WAL mode and PostgreSQL both let readers run beside the
server's writes).
"""

import csv
import dataclasses
import datetime
import pathlib

from absl import app, flags

from ppvad_jax.serving import alert_store

_DB = flags.DEFINE_string("db", None, "The server's SQLite store.")
_DSN = flags.DEFINE_string("dsn", None, "The servers' PostgreSQL store (password from PGPASSWORD).")
_CAMERA = flags.DEFINE_string("camera_id", None, "Only this camera's alerts.")
_CSV = flags.DEFINE_string("csv", None, "Write the alerts to this CSV file instead of listing them.")


def _time(t):
    return datetime.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds")


def main(argv):
    del argv
    if (_DB.value is None) == (_DSN.value is None):
        raise app.UsageError("give exactly one of --db (SQLite file) and --dsn (PostgreSQL)")
    if _DSN.value:
        store = alert_store.PostgresAlertStore(_DSN.value)
    elif not pathlib.Path(_DB.value).is_file():
        raise app.UsageError(f"{_DB.value} does not exist")
    else:
        store = alert_store.SqliteAlertStore(_DB.value)
    try:
        alerts = store.list_alerts(_CAMERA.value)
    finally:
        store.close()
    if _CSV.value:
        fields = [f.name for f in dataclasses.fields(alert_store.Alert)]
        with open(_CSV.value, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(dataclasses.asdict(a) for a in alerts)
        print(f"wrote {len(alerts)} alert(s) to {_CSV.value}")
        return
    print(f"{len(alerts)} alert(s)")
    for a in alerts:
        state = "OPEN  " if a.is_open else "closed"
        print(
            f"{state} {a.camera_id:10s} frames {a.start_frame}-{a.end_frame} "
            f"{_time(a.start_time)} -> {_time(a.end_time)}  peak {a.peak_score:.3f}  {a.alert_id}"
        )


if __name__ == "__main__":
    app.run(main)
