"""Makes a development CA, a server certificate and one client certificate per camera.

  python -m launch.make_certs --out_dir=certs --cameras=cam1,cam2          # a new PKI
  python -m launch.make_certs --out_dir=certs --add_cameras=cam3,cam4      # same CA, more cameras
  python -m launch.make_certs --out_dir=certs --revoke=cam2                # refuse cam2 from now on
  python -m launch.make_certs --out_dir=certs --console_hosts=localhost     # the console's HTTPS

The server needs ca.crt, server.crt, server.key and cameras.txt (and crl.pem once
a camera is revoked); camera X needs ca.crt, X.crt and X.key. Keep ca.key
elsewhere (it signs new cameras). Never commit the directory (``certs/`` is
git-ignored).

A folder that already holds a CA is refused unless ``--force``: a new CA
invalidates every camera certificate already deployed. ``--add_cameras`` signs
with the existing CA and appends to cameras.txt; ``--revoke`` adds the cameras'
certificates to crl.pem, which a running server re-reads on SIGHUP or within
``config.reload_every_s`` of the change, ending only the revoked streams.
Private keys are created 0600.
"""

import pathlib
import sys

from absl import app, flags

from ppvad_jax.serving import tls

_OUT = flags.DEFINE_string("out_dir", "certs", "Where the certificates and keys go.")
_CAMERAS = flags.DEFINE_list("cameras", ["cam1", "cam2"], "Camera ids (each becomes a client cert CN).")
_HOSTS = flags.DEFINE_list("server_hosts", ["localhost", "127.0.0.1"], "Server certificate SANs.")
_FORCE = flags.DEFINE_bool("force", False, "Replace an existing CA (invalidates every camera certificate).")
_ADD = flags.DEFINE_list("add_cameras", [], "Sign these new cameras with the existing CA.")
_REVOKE = flags.DEFINE_list("revoke", [], "Revoke these cameras' certificates (writes crl.pem).")
_CONSOLE = flags.DEFINE_list(
    "console_hosts", [], "Sign console.crt/key for the operator console (these SANs)."
)


def main(argv):
    del argv
    if _ADD.value and _REVOKE.value:
        raise app.UsageError("give --add_cameras or --revoke, not both")
    try:
        if _CONSOLE.value:
            if not (pathlib.Path(_OUT.value) / "ca.key").is_file():
                tls.make_development_pki(_OUT.value, _CAMERAS.value, server_hosts=tuple(_HOSTS.value))
            print(f"wrote {tls.add_console(_OUT.value, _CONSOLE.value)} and its key for {_CONSOLE.value}")
        elif _ADD.value:
            added = tls.add_cameras(_OUT.value, _ADD.value)
            print(
                f"signed {len(added)} new camera certificate(s) with the existing CA in {_OUT.value}: {added}"
            )
        elif _REVOKE.value:
            serials = tls.revoke(_OUT.value, _REVOKE.value)
            print(f"revoked {len(serials)} certificate(s) in {_OUT.value}/crl.pem: {_REVOKE.value}")
            print("a running server refuses them after SIGHUP or its next poll of crl.pem")
        else:
            out = tls.make_development_pki(
                _OUT.value, _CAMERAS.value, server_hosts=tuple(_HOSTS.value), force=_FORCE.value
            )
            print(
                f"wrote a development CA, a server certificate and {len(_CAMERAS.value)} camera certificates"
            )
            print(f"to {out}")
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
