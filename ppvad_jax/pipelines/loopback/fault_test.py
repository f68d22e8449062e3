"""Fault test: kill -9 the server mid-stream, restart it, check what survived.

Real processes throughout: ``launch.serve`` and one ``launch.camera`` per camera
(each streaming its own looped video of the synthetic world in real time,
logging every response it receives). After ``before_kill_s`` of streaming the
server gets SIGKILL; the alerts and camera states on disk are snapshotted;
after ``downtime_s`` the server restarts on the same port. The cameras, in
their backoff loop, reconnect, resend their unanswered frames and finish their
source; then the server gets SIGTERM.

Checked, and reported with ``passed``:
- every camera exits 0 with every frame answered;
- every alert committed before the kill is still in the store, same start;
- no frame is scored twice (a resent frame is replayed from the store);
- every frame a camera was told "ok" about is in the store (commit before ack);
- the SAS continues: the stored scores of each camera are one uninterrupted
  recurrence over its stored confidences, across the kill;
- reconnect time: from the restarted server listening to each camera's first
  answer.

``scorer_midpoint=-1`` makes the placeholder scorer call every frame anomalous,
so alerts exist to be lost; the real scorer's alerts depend on the video.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ppvad_jax.data import video_io
from ppvad_jax.evaluation import sas
from ppvad_jax.pipelines.loopback import cameras
from ppvad_jax.serving import alert_store, server_process


@dataclasses.dataclass(frozen=True)
class FaultTestSettings:
    """The flags of ``launch.fault_test``."""

    cameras: int  # cameras, one process each
    fps: float  # frames per second per camera
    before_kill_s: float  # streaming time before the kill
    downtime_s: float  # time the server stays down
    after_s: float  # streaming time after the restart (source length)
    ae_export: str  # the autoencoder export of the server and the cameras
    videos: str  # glob of source videos (looped)
    scorer_midpoint: float  # placeholder scorer midpoint (-1: all anomalous)
    server_flags: tuple[str, ...]  # extra launch.serve flags
    workdir: str | None  # where everything goes; None: a temp dir


@dataclasses.dataclass(frozen=True)
class _World:
    """What the run streams and where it writes: certificates, store, sources, camera logs."""

    workdir: str
    certs_dir: str
    db: str
    camera_ids: list[str]
    sources: dict[str, str]  # camera -> its looped source video
    logs: dict[str, str]  # camera -> the JSON lines of every answer it received
    num_frames: int  # frames per camera
    server_flags: list[str]
    env: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _AtKill:
    """The store and the cameras' logs right after the kill."""

    alerts: list  # alert_store alerts committed before the kill
    states: dict  # camera -> its stored state
    answered: dict[str, int]  # camera -> answers logged before the kill
    killed_at: float


@dataclasses.dataclass(frozen=True)
class _Restart:
    """The restarted server and the clocks of its start."""

    server: server_process.ServerProcess
    restarting_at: float
    listening_at: float  # it accepts cameras


def _looped_source(video, out_path, *, fps, size, num_frames):
    """The video at the test's rate, looped to ``num_frames`` frames, written at that rate."""
    frames = cameras.looped_frames(video, fps=fps, size=size, num_frames=num_frames)
    video_io.write_video(out_path, frames, fps=fps)
    return out_path


def _read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _make_world(settings: FaultTestSettings) -> _World:
    """The PKI, one looped source video per camera, the server's flags and environment."""
    workdir = settings.workdir or tempfile.mkdtemp(prefix="fault_test_")
    certs_dir, db = os.path.join(workdir, "certs"), os.path.join(workdir, "alerts.sqlite")
    camera_ids = cameras.camera_ids(settings.cameras)
    cameras.make_pki(certs_dir, camera_ids)
    videos = cameras.source_videos(settings.videos)
    with open(os.path.join(settings.ae_export, "spec.json")) as f:
        size = tuple(json.load(f)["frame_shape"][:2])
    num_frames = int(settings.fps * (settings.before_kill_s + settings.downtime_s + settings.after_s))
    sources = {
        cam: _looped_source(
            videos[i % len(videos)], os.path.join(workdir, f"{cam}.avi"),
            fps=settings.fps, size=size, num_frames=num_frames,
        )
        for i, cam in enumerate(camera_ids)
    }  # fmt: skip
    server_flags = [
        "--config=configs/serve.py:runlocal=True", f"--config.ae_export={settings.ae_export}",
        "--config.scorer.name=motion_energy", f"--config.scorer.midpoint={settings.scorer_midpoint}",
        *settings.server_flags,
    ]  # fmt: skip
    logs = {cam: os.path.join(workdir, f"{cam}.jsonl") for cam in camera_ids}
    env = server_process.child_env()
    return _World(workdir, certs_dir, db, camera_ids, sources, logs, num_frames, server_flags, env)


def _start_server(world: _World, port=0):
    return server_process.ServerProcess(
        certs_dir=world.certs_dir, db=world.db, config_flags=world.server_flags, port=port, env=world.env
    )


def _start_camera(world: _World, cam, port, settings: FaultTestSettings):
    return subprocess.Popen(
        [
            sys.executable, "-m", "launch.camera",
            f"--source={world.sources[cam]}", f"--server=localhost:{port}",
            f"--certs_dir={world.certs_dir}", f"--camera_id={cam}", f"--ae_export={settings.ae_export}",
            f"--fps={settings.fps}", f"--log_jsonl={world.logs[cam]}", "--quiet", "--drain_timeout_s=120",
        ],
        cwd=server_process.ROOT, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _kill(server, world: _World) -> _AtKill:
    """SIGKILL, then a snapshot of the store and of the cameras' logs."""
    server.kill()
    killed_at = time.time()
    store = alert_store.SqliteAlertStore(world.db)
    alerts, states = store.list_alerts(), store.load_states()
    store.close()
    answered = {cam: len(_read_log(p)) for cam, p in world.logs.items()}
    return _AtKill(alerts, states, answered, killed_at)


def _restart(world: _World, port, *, downtime_s) -> _Restart:
    """After ``downtime_s``, the server again on the same port."""
    time.sleep(downtime_s)
    restarting_at = time.time()
    server = _start_server(world, port)
    return _Restart(server, restarting_at, listening_at=time.time())


def _camera_checks(cam, store, world: _World, at_kill: _AtKill, listening_at, proc, output) -> dict:
    """One camera's checks, ``stderr_tail`` among them when it did not pass."""
    results = store.frame_results(cam)
    indices = [r.frame_index for r in results]
    expected = sas.sigmoidal_anomaly_score(np.array([r.confidence for r in results]), method="python")
    sas_gap = float(np.max(np.abs(np.array([r.score for r in results]) - expected))) if results else 0.0
    log = _read_log(world.logs[cam])
    acked_ok = {r["frame_index"] for r in log if r.get("status") == "ok"}
    after = [r["received_at"] - listening_at for r in log if r["received_at"] > listening_at]
    done_lines = [line for line in output[0].splitlines() if '"camera_done"' in line]
    summary = json.loads(done_lines[-1]) if done_lines else {}
    checks = {
        "exit_code": proc.returncode,
        "unanswered": summary.get("unanswered"),
        "frames_scored": len(results),
        "frames_scored_twice": len(indices) - len(set(indices)),
        "acked_but_not_stored": len(acked_ok - set(indices)),
        "replayed_after_restart": sum(r.get("status") == "replayed" for r in log),
        "dropped_overloaded": sum(r.get("status") == "overloaded" for r in log),
        "sas_max_deviation_from_one_recurrence": sas_gap,
        "accumulator_at_kill": at_kill.states[cam].accumulator if cam in at_kill.states else None,
        "answers_before_kill": at_kill.answered[cam],
        "reconnect_s": round(min(after), 2) if after else None,
    }
    if not _camera_passed(checks):
        checks["stderr_tail"] = output[1][-1500:]
    return checks


def _camera_passed(checks) -> bool:
    return (
        checks["exit_code"] == 0 and checks["unanswered"] == 0 and checks["frames_scored_twice"] == 0
        and checks["acked_but_not_stored"] == 0 and checks["sas_max_deviation_from_one_recurrence"] < 1e-9
        and checks["reconnect_s"] is not None
    )  # fmt: skip


def _report(world: _World, at_kill: _AtKill, restart: _Restart, procs, outputs, stopped, settings) -> dict:
    """Every camera's checks, the alerts lost or moved by the kill, and ``passed``."""
    store = alert_store.SqliteAlertStore(world.db)
    alerts_after = {a.alert_id: a for a in store.list_alerts()}
    report = {"cameras": {}, "workdir": world.workdir, "frames_per_camera": world.num_frames}
    ok = True
    for cam in world.camera_ids:
        checks = _camera_checks(cam, store, world, at_kill, restart.listening_at, procs[cam], outputs[cam])
        ok &= _camera_passed(checks)
        report["cameras"][cam] = checks
    lost = [a.alert_id for a in at_kill.alerts if a.alert_id not in alerts_after]
    moved = [
        a.alert_id for a in at_kill.alerts
        if a.alert_id in alerts_after and alerts_after[a.alert_id].start_frame != a.start_frame
    ]  # fmt: skip
    store.close()
    report.update(
        killed_after_s=settings.before_kill_s,
        downtime_s=round(restart.listening_at - at_kill.killed_at, 2),
        # process start, load, compile (cached)
        server_start_s=round(restart.listening_at - restart.restarting_at, 2),
        alerts_before_kill=len(at_kill.alerts),
        alerts_after=len(alerts_after),
        alerts_lost=lost,
        alerts_changed_start=moved,
        server_after_restart={k: v for k, v in stopped.items() if k != "event"},
        passed=bool(ok and not lost and not moved and at_kill.alerts),
    )
    return report


def run(settings: FaultTestSettings) -> dict:
    """Runs the fault test (module docstring) and returns its JSON report (``passed`` among it).

    Raises:
      cameras.NoVideoError: no video matches ``settings.videos``.
    """
    world = _make_world(settings)
    server = _start_server(world)
    procs = {cam: _start_camera(world, cam, server.port, settings) for cam in world.camera_ids}
    _wait(lambda: all(_read_log(p) for p in world.logs.values()), 300, "the cameras' first answers")
    time.sleep(settings.before_kill_s)
    port = server.port
    at_kill = _kill(server, world)
    restart = _restart(world, port, downtime_s=settings.downtime_s)
    timeout = settings.after_s + settings.before_kill_s + 300
    outputs = {cam: p.communicate(timeout=timeout) for cam, p in procs.items()}
    restart.server.terminate()
    stopped = restart.server.wait_for("stopped", 60)
    return _report(world, at_kill, restart, procs, outputs, stopped, settings)
