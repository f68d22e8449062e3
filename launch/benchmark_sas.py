"""Benchmark of the sigmoidal anomaly score implementations, in one run; prints JSON.

  python -m launch.benchmark_sas [--videos=128] [--frames=10000] [--repeats=5] [--python_videos=0]

Times, on the same random confidences ([videos, frames], float32):
- ``python_loop``: ``method="python"``, a per-frame Python loop per video (the
  baseline). With --python_videos=N it runs on the first N videos only and the
  time is scaled by videos / N (the loop is linear in videos; the JSON says so).
- ``numpy_frame_loop``: a Python loop over frames doing one numpy step for all
  videos at once: the best one can do without a compiler, for context.
- ``sequential`` and ``associative``: the compiled methods under ``jax.jit`` (so the
  host-side input check is not timed), median of --repeats after a compiling call
  (timed separately).
Ratios are speed-ups over the Python loop. The compiled results are checked
against the Python loop (max abs difference in the JSON).
"""

import functools
import json
import platform
import statistics
import time

import jax
import numpy as np
from absl import app, flags

from ppvad_jax.evaluation import sas

_VIDEOS = flags.DEFINE_integer("videos", 128, "Videos per batch.")
_FRAMES = flags.DEFINE_integer("frames", 10_000, "Frames per video.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per compiled method (median).")
_PYTHON_VIDEOS = flags.DEFINE_integer("python_videos", 0, "Videos for the Python loop; 0: all.")
_PARAMS = {"tau": 0.5, "nu": 2.0, "lower": -7.0, "upper": 7.0, "initial": -7.0}


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_frame_loop(confidence):
    """One vectorised numpy step per frame, all videos at once (context, not a method of sas)."""
    tau, nu, lower, upper = _PARAMS["tau"], _PARAMS["nu"], _PARAMS["lower"], _PARAMS["upper"]
    increments = np.where(confidence >= tau, nu * (confidence - tau), -nu * (1 - confidence - tau)) / (
        1 - tau
    )
    x = np.full(confidence.shape[0], _PARAMS["initial"], np.float32)
    out = np.empty_like(confidence)
    for t in range(confidence.shape[1]):
        x = np.clip(x + increments[:, t], lower, upper)
        out[:, t] = x
    return 1.0 / (1.0 + np.exp(-out))


def main(argv):
    del argv
    videos, frames = _VIDEOS.value, _FRAMES.value
    confidence = np.random.default_rng(0).random((videos, frames), dtype=np.float32)
    total = videos * frames
    out = {
        "machine": f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"{jax.default_backend()}",
        "videos": videos,
        "frames": frames,
        "jax": jax.__version__,
    }

    python_videos = _PYTHON_VIDEOS.value or videos
    start = time.perf_counter()
    reference = sas.sigmoidal_anomaly_score(confidence[:python_videos], method="python", **_PARAMS)
    measured = time.perf_counter() - start
    python_seconds = measured * videos / python_videos
    out["python_loop"] = {
        "seconds": float(f"{python_seconds:.4g}"),
        "frames_per_s": round(total / python_seconds),
        "measured_videos": python_videos,
        "scaled_from_measured": python_videos != videos,
    }

    numpy_seconds = median_seconds(lambda: numpy_frame_loop(confidence), 1)
    out["numpy_frame_loop"] = {
        "seconds": float(f"{numpy_seconds:.4g}"),
        "frames_per_s": round(total / numpy_seconds),
        "speedup_vs_python_loop": round(python_seconds / numpy_seconds, 1),
    }

    device_confidence = jax.device_put(confidence)
    for method in ("sequential", "associative"):
        score_fn = jax.jit(functools.partial(sas.sigmoidal_anomaly_score, method=method, **_PARAMS))
        start = time.perf_counter()
        scores = jax.block_until_ready(score_fn(device_confidence))
        first = time.perf_counter() - start
        seconds = median_seconds(
            lambda fn=score_fn: jax.block_until_ready(fn(device_confidence)), _REPEATS.value
        )
        out[method] = {
            "seconds": float(f"{seconds:.4g}"),
            "frames_per_s": round(total / seconds),
            "speedup_vs_python_loop": round(python_seconds / seconds, 1),
            "first_call_with_compile_s": round(first, 2),
            "max_abs_diff_vs_python": float(
                f"{np.abs(np.asarray(scores)[:python_videos] - reference).max():.2g}"
            ),
        }
        print(f"{method}: {out[method]}", flush=True)
    out["associative_over_sequential_time"] = round(
        out["associative"]["seconds"] / out["sequential"]["seconds"], 2
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
