"""Runs the analysis server until SIGTERM / SIGINT, then drains and stops gracefully.

  python -m launch.serve --config=configs/serve.py:runlocal=True --port=50051 --certs_dir=certs \
      --db=runs/alerts.sqlite

Prints one JSON line ``{"event": "listening", "port": ...}`` once it accepts
cameras (``--port=0`` picks a free port), a stats line every
``config.log_every_s`` and a final ``{"event": "stopped", ...}``. Compiled
programs are cached under ``--compilation_cache_dir``, so a restart after a
crash is back in seconds.

SIGHUP re-reads ``cameras.txt`` and ``crl.pem`` (``launch.make_certs
--add_cameras`` / ``--revoke``) without dropping any other stream, and prints
``{"event": "reloaded", ...}``; the server also notices a change of either file
within ``config.reload_every_s``. ``runlocal`` listens on 127.0.0.1 only.
"""

import json
import logging
import signal
import threading

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.serving import compilation_cache
from ppvad_jax.serving import server as server_lib

_PORT = flags.DEFINE_integer("port", 50051, "TCP port; 0 picks a free one (printed).")
_CERTS = flags.DEFINE_string("certs_dir", None, "ca.crt, server.crt/key (launch.make_certs).", required=True)
_DB = flags.DEFINE_string(
    "db",
    "alerts.sqlite",
    "The SQLite alert store (config.store.kind=sqlite; postgres uses config.store.dsn).",
)
_HOST = flags.DEFINE_string("host", None, "Interface to listen on; default config.host.")
_CACHE = flags.DEFINE_string(
    "compilation_cache_dir",
    "runs/xla_cache",
    "Persistent XLA cache, so a restarted server skips compilation (25 s -> 4.5 s to listening on the "
    "2-core machine); '' disables. $JAX_COMPILATION_CACHE_DIR wins when set.",
)
_CONFIG = config_flags.DEFINE_config_file("config", "configs/serve.py", "Server config.", lock_config=True)


def _print(event):
    print(json.dumps(event), flush=True)


def main(argv):
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    compilation_cache.enable(_CACHE.value)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = server_lib.AnalysisServer(
        _CONFIG.value, certs_dir=_CERTS.value, db_path=_DB.value, port=_PORT.value, host=_HOST.value
    ).start()
    # On a thread: the handler runs on the main thread, between any two of its bytecodes.
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=lambda: _print(server.reload())).start())
    _print(server.describe())
    every = _CONFIG.value.log_every_s
    while not stop.wait(every if every > 0 else None):
        _print({"event": "stats", **server.stats()})
    _print({"event": "draining"})
    server.shutdown()
    _print({"event": "stopped", **server.stats()})


if __name__ == "__main__":
    app.run(main)
