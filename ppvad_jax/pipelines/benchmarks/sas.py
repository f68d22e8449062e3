"""The sigmoidal anomaly score's implementations timed on the same random confidences, in one run.

On ``[videos, frames]`` float32 confidences:
- ``python_loop``: ``method="python"``, a per-frame Python loop per video (the
  baseline). With ``python_videos=N`` it runs on the first N videos only and the
  time is scaled by videos / N (the loop is linear in videos; the JSON says so).
- ``numpy_frame_loop``: a Python loop over frames doing one numpy step for all
  videos at once: the best one can do without a compiler, for context.
- ``sequential`` and ``associative``: the compiled methods under ``jax.jit`` (so the
  host-side input check is not timed), median of ``repeats`` after a compiling call
  (timed separately).
Ratios are speed-ups over the Python loop. The compiled results are checked
against the Python loop (max abs difference in the JSON).
"""

import functools
import platform
import time

import jax
import numpy as np

from ppvad_jax.evaluation import sas
from ppvad_jax.pipelines.benchmarks import timing

PARAMS = {"tau": 0.5, "nu": 2.0, "lower": -7.0, "upper": 7.0, "initial": -7.0}


def numpy_frame_loop(confidence):
    """One vectorised numpy step per frame, all videos at once (context, not a method of sas)."""
    tau, nu, lower, upper = PARAMS["tau"], PARAMS["nu"], PARAMS["lower"], PARAMS["upper"]
    increments = np.where(confidence >= tau, nu * (confidence - tau), -nu * (1 - confidence - tau)) / (
        1 - tau
    )
    x = np.full(confidence.shape[0], PARAMS["initial"], np.float32)
    out = np.empty_like(confidence)
    for t in range(confidence.shape[1]):
        x = np.clip(x + increments[:, t], lower, upper)
        out[:, t] = x
    return 1.0 / (1.0 + np.exp(-out))


def _python_loop(confidence, python_videos):
    """``(reference scores of the first python_videos videos, entry, seconds scaled to all videos)``."""
    videos, frames = confidence.shape
    start = time.perf_counter()
    reference = sas.sigmoidal_anomaly_score(confidence[:python_videos], method="python", **PARAMS)
    python_seconds = (time.perf_counter() - start) * videos / python_videos
    return reference, python_seconds, {
        "seconds": float(f"{python_seconds:.4g}"),
        "frames_per_s": round(videos * frames / python_seconds),
        "measured_videos": python_videos,
        "scaled_from_measured": python_videos != videos,
    }  # fmt: skip


def _compiled(method, device_confidence, reference, python_seconds, repeats):
    """One compiled method: its median time after a compiling call, and its error against the loop."""
    score_fn = jax.jit(functools.partial(sas.sigmoidal_anomaly_score, method=method, **PARAMS))
    start = time.perf_counter()
    scores = jax.block_until_ready(score_fn(device_confidence))
    first = time.perf_counter() - start
    seconds = timing.median_seconds(lambda: jax.block_until_ready(score_fn(device_confidence)), repeats)
    return {
        "seconds": float(f"{seconds:.4g}"),
        "frames_per_s": round(device_confidence.size / seconds),
        "speedup_vs_python_loop": round(python_seconds / seconds, 1),
        "first_call_with_compile_s": round(first, 2),
        "max_abs_diff_vs_python": float(
            f"{np.abs(np.asarray(scores)[: len(reference)] - reference).max():.2g}"
        ),
    }


def run(*, videos, frames, repeats, python_videos=0):
    """The benchmark's JSON object (module docstring); ``python_videos`` 0: the loop runs on all."""
    confidence = np.random.default_rng(0).random((videos, frames), dtype=np.float32)
    out = {
        "machine": f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"{jax.default_backend()}",
        "videos": videos,
        "frames": frames,
        "jax": jax.__version__,
    }
    reference, python_seconds, out["python_loop"] = _python_loop(confidence, python_videos or videos)
    numpy_seconds = timing.median_seconds(lambda: numpy_frame_loop(confidence), 1)
    out["numpy_frame_loop"] = {
        "seconds": float(f"{numpy_seconds:.4g}"),
        "frames_per_s": round(videos * frames / numpy_seconds),
        "speedup_vs_python_loop": round(python_seconds / numpy_seconds, 1),
    }
    device_confidence = jax.device_put(confidence)
    for method in ("sequential", "associative"):
        out[method] = _compiled(method, device_confidence, reference, python_seconds, repeats)
        print(f"{method}: {out[method]}", flush=True)
    out["associative_over_sequential_time"] = round(
        out["associative"]["seconds"] / out["sequential"]["seconds"], 2
    )
    return out
