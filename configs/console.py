r"""The operator console: cameras, live timelines, alerts and their acknowledgement, over HTTPS.

  python -m launch.make_certs --out_dir=certs --console_hosts=localhost,127.0.0.1   # console.crt
  python -m launch.console --users=certs/console_users.json --add_user=alice --role=operator
  python -m launch.console --config=configs/console.py --db=runs/alerts.sqlite --certs_dir=certs \
      --users=certs/console_users.json [--config.store.kind=postgres --config.store.dsn=postgresql://...]

Its own process, reading the store the analysis servers write (many servers can feed one
console; a console crash never stops scoring). No ``arg``.
"""

import ml_collections

from configs import config_args


def get_config(arg=None):
    config_args.parse(arg, set(), "no argument (override fields with --config.NAME=VALUE)")
    config = ml_collections.ConfigDict()
    config.host = "127.0.0.1"  # loopback by default; "0.0.0.0" or "::" for a console on the network
    config.port = 8443
    config.session_hours = 12.0  # a login lasts this long
    config.timeline_minutes = 2.0  # the span of the cameras page's timelines
    config.poll_s = 1.0  # how often the live stream re-reads the store
    config.store = ml_collections.ConfigDict()
    config.store.kind = "sqlite"  # or "postgres", as configs/serve.py
    config.store.dsn = ""
    config.store.synchronous = "FULL"  # acknowledgements are durable before the page says so
    config.store.keep_results_s = 3600.0
    return config
