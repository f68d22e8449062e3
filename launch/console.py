"""The operator console (configs/console.py has the full command lines).

  python -m launch.console --users=certs/console_users.json --add_user=alice --role=operator
  python -m launch.console --config=configs/console.py --db=runs/alerts.sqlite --certs_dir=certs \
      --users=certs/console_users.json

Serves HTTPS with ``certs_dir/console.crt`` (``launch.make_certs --console_hosts``), signed by the
project's CA. ``--add_user`` reads the password from PPVAD_CONSOLE_PASSWORD or asks for it.
"""

import getpass
import os
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.serving import alert_store
from ppvad_jax.serving.console import accounts
from ppvad_jax.serving.console import app as console_app

_CONFIG = config_flags.DEFINE_config_file("config", "configs/console.py", "Console config.")
_DB = flags.DEFINE_string("db", "runs/alerts.sqlite", "The servers' SQLite store (store.kind=sqlite).")
_CERTS = flags.DEFINE_string("certs_dir", "certs", "Holds console.crt and console.key.")
_USERS = flags.DEFINE_string("users", "certs/console_users.json", "Users file (accounts.py).")
_ADD = flags.DEFINE_string("add_user", None, "Add or replace this user, then exit.")
_ROLE = flags.DEFINE_enum("role", "viewer", list(accounts.ROLES), "Role of --add_user.")


def add_user(users, name, role):
    password = os.environ.get("PPVAD_CONSOLE_PASSWORD") or getpass.getpass(f"password for {name}: ")
    accounts.Accounts(users).add(name, password, role)
    print(f"{name} ({role}) saved in {users}")


def open_store(config, db):
    """The servers' store; a SQLite path that is not an alert store is refused, never changed."""
    if config.store.kind == "sqlite":
        if not pathlib.Path(db).is_file():
            raise app.UsageError(f"{db}: no such alert store (start launch.serve with --db={db} first)")
        alert_store.open_sqlite_reader(db).close()  # raises NotAnAlertStore, naming the file
    return alert_store.open_store(config.store, db)


def main(argv):
    del argv
    if _ADD.value:
        try:
            return add_user(_USERS.value, _ADD.value, _ROLE.value)
        except ValueError as e:
            sys.exit(f"error: {e}")
    config = _CONFIG.value
    certs = pathlib.Path(_CERTS.value)
    for name in ("console.crt", "console.key"):
        if not (certs / name).is_file():
            raise app.UsageError(
                f"{certs / name} missing: launch.make_certs --out_dir={certs} --console_hosts=localhost"
            )
    if not pathlib.Path(_USERS.value).is_file():
        raise app.UsageError(f"{_USERS.value}: no users yet (--add_user=NAME --role=operator)")
    try:
        store = open_store(config, _DB.value)
    except alert_store.NotAnAlertStore as e:
        raise app.UsageError(str(e)) from e
    where = _DB.value if config.store.kind == "sqlite" else config.store.dsn
    print(f"console: https://{config.host}:{config.port}/ (store {where})", flush=True)
    console_app.serve(
        store, _USERS.value, certs, host=config.host, port=config.port, session_hours=config.session_hours,
        timeline_minutes=config.timeline_minutes, poll_s=config.poll_s,
    )  # fmt: skip


if __name__ == "__main__":
    app.run(main)
