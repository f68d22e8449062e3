"""Makes a development CA, a server certificate and one client certificate per camera.

  python -m launch.make_certs --out_dir=certs --cameras=cam1,cam2

The server needs ca.crt, server.crt, server.key and cameras.txt; camera X
needs ca.crt, X.crt and X.key. Keep ca.key elsewhere (it signs new cameras).
Never commit the directory (``certs/`` is git-ignored).
"""

from absl import app, flags

from ppvad_jax.serving import tls

_OUT = flags.DEFINE_string("out_dir", "certs", "Where the certificates and keys go.")
_CAMERAS = flags.DEFINE_list("cameras", ["cam1", "cam2"], "Camera ids (each becomes a client cert CN).")
_HOSTS = flags.DEFINE_list("server_hosts", ["localhost", "127.0.0.1"], "Server certificate SANs.")


def main(argv):
    del argv
    out = tls.make_development_pki(_OUT.value, _CAMERAS.value, server_hosts=tuple(_HOSTS.value))
    print(f"wrote a development CA, a server certificate and {len(_CAMERAS.value)} camera certificates")
    print(f"to {out}")


if __name__ == "__main__":
    app.run(main)
