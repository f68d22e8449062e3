"""``python -m launch.serve`` as a child process, for the load and fault tests (and the test suite).

A real process, not a thread, because what is tested is what a deployment
sees: ``kill -9`` leaves no chance to flush anything, SIGTERM goes through the
signal handler, and the server's CPU use competes with the cameras' as it
would on one host. The server's JSON event lines (``listening``, ``stats``,
``stopped``) are read from its stdout; stderr is kept for error messages.
"""

import json
import os
import pathlib
import queue
import subprocess
import sys
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]


def child_env(**extra):
    """The environment for a child: this repository importable, plus ``extra``."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT), **extra}


class ServerProcess:
    """Starts ``launch.serve``; ``port`` and ``listening`` (its first event) once it accepts cameras."""

    def __init__(self, *, certs_dir, db, config_flags=(), port=0, env=None, timeout=120.0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launch.serve", f"--port={port}", f"--certs_dir={certs_dir}", f"--db={db}"]
            + list(config_flags),
            cwd=ROOT, env=env or child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.events = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        self.listening = self.wait_for("listening", timeout)
        self.port = self.listening["port"]

    def _pump_stdout(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                pass
        self.events.put({"event": "exited"})

    def wait_for(self, event, timeout):
        """The next event named ``event``; raises with the server's stderr if it never comes."""
        while True:
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                tail = "".join(self.stderr)[-3000:]
                raise TimeoutError(f"no {event!r} from the server in {timeout} s; stderr:\n{tail}") from None
            if item.get("event") == event:
                return item
            if item.get("event") == "exited":
                tail = "".join(self.stderr)[-3000:]
                raise RuntimeError(f"server exited before {event!r}; stderr:\n{tail}")

    def kill(self):
        """SIGKILL: no drain, no flush, no goodbye."""
        self.proc.kill()
        self.proc.wait(30)

    def terminate(self, timeout=60.0):
        """SIGTERM, then waits for the graceful stop; returns the exit code."""
        self.proc.terminate()
        return self.proc.wait(timeout)
