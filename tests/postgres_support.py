"""A throwaway PostgreSQL server for the alert-store tests (no network, no system service).

The server binaries come from the ``pgserver`` wheel (requirements-dev.txt: PostgreSQL built
for manylinux, no libpq needed by us), or from a system install (Debian's postgresql, or
``initdb`` on PATH). PostgreSQL refuses to run as root, so under root (CI containers) the
server runs as ``nobody`` in a directory handed to it. initdb plus start take ~2 s.
"""

import contextlib
import importlib.util
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def binaries():
    """The directory holding initdb, pg_ctl and postgres, or None."""
    candidates = []
    spec = importlib.util.find_spec("pgserver")  # not imported: importing it touches XDG dirs
    if spec and spec.origin:
        candidates.append(pathlib.Path(spec.origin).parent / "pginstall" / "bin")
    if shutil.which("initdb"):
        candidates.append(pathlib.Path(shutil.which("initdb")).parent)
    candidates += sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dsn(str):
    """A DSN that can also restart its server (``restart()``: an immediate stop, then a start,
    the way a crashed database server comes back)."""

    def __new__(cls, value, *, restart):
        dsn = super().__new__(cls, value)
        dsn.restart = restart
        return dsn


@contextlib.contextmanager
def temporary_server():
    """Yields the DSN (a ``Dsn``) of a fresh PostgreSQL server on 127.0.0.1; stops and deletes it
    after."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries (pip install pgserver, or apt install postgresql)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="ppvad_pg_"))
    as_root = os.geteuid() == 0
    run = dict(capture_output=True, text=True, check=True, cwd=root)
    if as_root:
        # subprocess switches user in C between fork and exec: no Python runs in the child, which
        # matters in a process with JAX's threads (a preexec_fn could deadlock there).
        uid = gid = 65534  # nobody / nogroup
        os.chown(root, uid, gid)
        run.update(user=uid, group=gid, extra_groups=[])
    data, port = root / "data", _free_port()
    try:
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            **run,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"], **run
        )
        start = [bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w"]
        try:
            yield Dsn(
                f"postgresql://postgres@127.0.0.1:{port}/postgres",
                restart=lambda: subprocess.run([*start, "-m", "immediate", "restart"], **run),
            )
        finally:
            subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], **run)
    except subprocess.CalledProcessError as e:
        log = (root / "log").read_text() if (root / "log").is_file() else ""
        raise RuntimeError(f"PostgreSQL failed: {e.cmd[0]}: {e.stderr}\n{log}") from e
    finally:
        shutil.rmtree(root, ignore_errors=True)
