"""Fault test: kill -9 the server mid-stream, restart it, check what survived; prints JSON.

  python -m launch.fault_test --cameras=2 --fps=10 --before_kill_s=10 --downtime_s=3 --after_s=10

Real processes throughout: ``launch.serve`` and one ``launch.camera`` per
camera (each streaming its own looped video of the synthetic world in real
time, logging every response it receives). After ``--before_kill_s`` of
streaming the server gets SIGKILL; the alerts and camera states on disk are
snapshotted; after ``--downtime_s`` the server restarts on the same port.
The cameras, in their backoff loop, reconnect, resend their unanswered
frames and finish their source; then the server gets SIGTERM.

Checked, and reported with ``passed``:
- every camera exits 0 with every frame answered;
- every alert committed before the kill is still in the store, same start;
- no frame is scored twice (a resent frame is replayed from the store);
- every frame a camera was told "ok" about is in the store (commit before ack);
- the SAS continues: the stored scores of each camera are one uninterrupted
  recurrence over its stored confidences, across the kill;
- reconnect time: from the restarted server listening to each camera's first
  answer.

``--scorer_midpoint=-1`` (the default) makes the placeholder scorer call every
frame anomalous, so alerts exist to be lost; the real scorer's alerts depend
on the video.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from ppvad_jax.data import video_io
from ppvad_jax.evaluation import sas
from ppvad_jax.serving import alert_store, camera_source, server_process, tls

_CAMERAS = flags.DEFINE_integer("cameras", 2, "Cameras (one process each).")
_FPS = flags.DEFINE_float("fps", 10.0, "Frames per second per camera.")
_BEFORE = flags.DEFINE_float("before_kill_s", 10.0, "Streaming time before the kill.")
_DOWN = flags.DEFINE_float("downtime_s", 3.0, "Time the server stays down.")
_AFTER = flags.DEFINE_float("after_s", 10.0, "Streaming time after the restart (source length).")
_EXPORT = flags.DEFINE_string("ae_export", "runs/demo/autoencoder_dpadam/export", "Autoencoder export.")
_VIDEOS = flags.DEFINE_string("videos", "runs/demo/world/*/*.avi", "Glob of source videos (looped).")
_MIDPOINT = flags.DEFINE_float("scorer_midpoint", -1.0, "Placeholder scorer midpoint (-1: all anomalous).")
_SERVER_FLAGS = flags.DEFINE_multi_string("server_flag", [], "Extra launch.serve flags.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where everything goes (default: a temp dir).")


def _looped_source(video, out_path, num_frames, size):
    """The video at the test's rate, looped to ``num_frames`` frames, written at that rate."""
    frames = []
    while len(frames) < num_frames:
        stream = camera_source.frames_at_rate(video, fps=_FPS.value, size=size, realtime=False)
        frames.extend(f for _, f in stream)
    video_io.write_video(out_path, frames[:num_frames], fps=_FPS.value)
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


def main(argv):
    del argv
    workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="fault_test_")
    certs, db = os.path.join(workdir, "certs"), os.path.join(workdir, "alerts.sqlite")
    cameras = [f"cam{i + 1}" for i in range(_CAMERAS.value)]
    # A throwaway PKI of this run's own: a rerun in the same --workdir replaces it.
    tls.make_development_pki(certs, cameras, force=True)
    videos = sorted(glob.glob(_VIDEOS.value))
    if not videos:
        raise app.UsageError(f"no video matches {_VIDEOS.value!r} (python -m launch.make_synthetic)")
    size = tuple(json.load(open(os.path.join(_EXPORT.value, "spec.json")))["frame_shape"][:2])
    num_frames = int(_FPS.value * (_BEFORE.value + _DOWN.value + _AFTER.value))
    sources = {
        cam: _looped_source(videos[i % len(videos)], os.path.join(workdir, f"{cam}.avi"), num_frames, size)
        for i, cam in enumerate(cameras)
    }
    env = server_process.child_env()
    server_flags = [
        "--config=configs/serve.py:runlocal=True", f"--config.ae_export={_EXPORT.value}",
        f"--config.scorer.midpoint={_MIDPOINT.value}", *_SERVER_FLAGS.value,
    ]  # fmt: skip

    def start_server(port=0):
        return server_process.ServerProcess(
            certs_dir=certs, db=db, config_flags=server_flags, port=port, env=env
        )

    server = start_server()
    port = server.port
    logs = {cam: os.path.join(workdir, f"{cam}.jsonl") for cam in cameras}
    procs = {
        cam: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launch.camera",
                f"--source={sources[cam]}",
                f"--server=localhost:{port}",
                f"--certs_dir={certs}",
                f"--camera_id={cam}",
                f"--ae_export={_EXPORT.value}",
                f"--fps={_FPS.value}",
                f"--log_jsonl={logs[cam]}",
                "--quiet",
                "--drain_timeout_s=120",
            ],
            cwd=server_process.ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for cam in cameras
    }
    _wait(lambda: all(_read_log(p) for p in logs.values()), 300, "the cameras' first answers")
    time.sleep(_BEFORE.value)

    server.kill()
    killed_at = time.time()
    store = alert_store.SqliteAlertStore(db)
    alerts_before, states_before = store.list_alerts(), store.load_states()
    store.close()
    answered_before = {cam: len(_read_log(p)) for cam, p in logs.items()}
    time.sleep(_DOWN.value)
    restarting_at = time.time()
    server = start_server(port)
    listening_at = time.time()
    outputs = {cam: p.communicate(timeout=_AFTER.value + _BEFORE.value + 300) for cam, p in procs.items()}
    server.terminate()
    stopped = server.wait_for("stopped", 60)

    store = alert_store.SqliteAlertStore(db)
    alerts_after = {a.alert_id: a for a in store.list_alerts()}
    report = {"cameras": {}, "workdir": workdir, "frames_per_camera": num_frames}
    ok = True
    for cam in cameras:
        results = store.frame_results(cam)
        indices = [r.frame_index for r in results]
        expected = sas.sigmoidal_anomaly_score(np.array([r.confidence for r in results]), method="python")
        sas_gap = float(np.max(np.abs(np.array([r.score for r in results]) - expected))) if results else 0.0
        log = _read_log(logs[cam])
        acked_ok = {r["frame_index"] for r in log if r.get("status") == "ok"}
        after = [r["received_at"] - listening_at for r in log if r["received_at"] > listening_at]
        done_lines = [line for line in outputs[cam][0].splitlines() if '"camera_done"' in line]
        summary = json.loads(done_lines[-1]) if done_lines else {}
        checks = {
            "exit_code": procs[cam].returncode,
            "unanswered": summary.get("unanswered"),
            "frames_scored": len(results),
            "frames_scored_twice": len(indices) - len(set(indices)),
            "acked_but_not_stored": len(acked_ok - set(indices)),
            "replayed_after_restart": sum(r.get("status") == "replayed" for r in log),
            "dropped_overloaded": sum(r.get("status") == "overloaded" for r in log),
            "sas_max_deviation_from_one_recurrence": sas_gap,
            "accumulator_at_kill": states_before[cam].accumulator if cam in states_before else None,
            "answers_before_kill": answered_before[cam],
            "reconnect_s": round(min(after), 2) if after else None,
        }
        cam_ok = (
            checks["exit_code"] == 0 and checks["unanswered"] == 0 and checks["frames_scored_twice"] == 0
            and checks["acked_but_not_stored"] == 0 and sas_gap < 1e-9 and checks["reconnect_s"] is not None
        )  # fmt: skip
        if not cam_ok:
            checks["stderr_tail"] = outputs[cam][1][-1500:]
        ok &= cam_ok
        report["cameras"][cam] = checks
    lost = [a.alert_id for a in alerts_before if a.alert_id not in alerts_after]
    moved = [
        a.alert_id for a in alerts_before
        if a.alert_id in alerts_after and alerts_after[a.alert_id].start_frame != a.start_frame
    ]  # fmt: skip
    store.close()
    report.update(
        killed_after_s=_BEFORE.value,
        downtime_s=round(listening_at - killed_at, 2),
        server_start_s=round(listening_at - restarting_at, 2),  # process start, load, compile (cached)
        alerts_before_kill=len(alerts_before),
        alerts_after=len(alerts_after),
        alerts_lost=lost,
        alerts_changed_start=moved,
        server_after_restart={k: v for k, v in stopped.items() if k != "event"},
        passed=bool(ok and not lost and not moved and alerts_before),
    )
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    app.run(main)
