"""Sigmoidal anomaly score (SAS, paper section 3.4.5), compiled.

The paper smooths the classifier's per-frame anomaly confidence sigma_t with a
clipped accumulator and reports s_t = sigmoid(x_t):

    x_t = clip(x_{t-1} + nu * (sigma_t - tau) / (1 - tau), LB, UB)        if sigma_t >= tau
    x_t = clip(x_{t-1} - nu * (1 - sigma_t - tau) / (1 - tau), LB, UB)    if sigma_t <  tau

with tau in [0, 1) (sensibility), nu > 0 (reactivity) and the paper's values
tau=0.5, nu=2, LB=-7, UB=7 (section 5.1.2). Both branches are the paper's formulas
as written. At tau=0.5 they meet: the step is nu * (2 sigma - 1). At other tau
they do not: the step jumps at sigma=tau, and for tau > 0.5 a confidence in
(1 - tau, tau) makes x_t *rise* (1 - sigma - tau < 0); the paper only uses 0.5.

The paper does not say where x starts. ``initial`` defaults to LB: a video
starts "normal" and needs evidence (floor(-LB / nu) + 1 = 4 frames of confidence 1 at
the paper's values) before s_t exceeds 0.5, so one noisy first frame raises no
alert. ``initial=0.0`` starts at s=0.5 instead.

Three implementations of the same recurrence, over any leading video dims [..., T]:
- ``associative``: ``lax.associative_scan`` in O(log T) depth (composition below);
  the GPU/TPU choice, where T sequential steps would each launch little work.
- ``sequential``: ``lax.scan`` over T, all videos per step; the reference, and
  the fastest on CPU (measured with launch/benchmark_sas.py).
- ``python``: a per-frame Python loop in float64, as an online server would run
  it; the benchmark's baseline and the tests' independent reference.

The compiled methods compile once per [videos, T] shape (leading dims are
flattened first; tau, nu and the bounds are traced, so sweeping them does not
recompile). The associative scan takes seconds to compile on a 2-core CPU, so
score many videos in one call, padded at the end to one length, rather than one
call per video length.

NaN: a concrete (not traced) input is checked and a NaN or a value outside [0, 1]
raises ValueError, at the cost of one copy to the host. Under ``jax.jit`` nothing
can be checked: a NaN at frame t makes that video's scores NaN from t on (NaN
fails ``sigma >= tau``, and clip keeps NaN), in both compiled methods.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

METHODS = ("auto", "associative", "sequential", "python")


def sigmoidal_anomaly_score(
    confidence: ArrayLike,
    *,
    tau: float = 0.5,
    nu: float = 2.0,
    lower: float = -7.0,
    upper: float = 7.0,
    initial: float | None = None,
    method: str = "auto",
) -> jax.Array | np.ndarray:
    """Per-frame sigmoidal anomaly score.

    Args:
      confidence: [..., T] anomaly confidence in [0, 1] per frame; leading dims are
        independent videos (pad ragged videos at the end: padding never changes
        earlier frames' scores).
      tau: sensibility, in [0, 1).
      nu: reactivity, > 0.
      lower, upper: the accumulator's bounds LB <= UB.
      initial: x before the first frame, in [lower, upper]; None means ``lower``.
      method: "auto" (sequential on CPU, associative on GPU/TPU), "associative",
        "sequential" or "python".

    Returns:
      [..., T] scores s_t = sigmoid(x_t) in (0, 1): computed and returned in float32 by
      the compiled methods (a jax array), in float64 numpy by "python".

    Raises:
      ValueError: for a parameter out of range, an unknown method, an input with no
        frame axis, or (concrete inputs only) a NaN or a confidence outside [0, 1].
    """
    tau, nu, lower, upper, initial = _check_params(tau, nu, lower, upper, initial)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if np.ndim(confidence) == 0:
        raise ValueError("confidence must have a frame axis: shape [..., T]")
    traced = isinstance(confidence, jax.core.Tracer)
    if not traced:
        _check_confidence(np.asarray(confidence))
    if np.size(confidence) == 0:
        return np.zeros(np.shape(confidence), np.float64 if method == "python" else np.float32)
    if method == "python":
        if traced:
            raise ValueError('method="python" cannot run under jit; use "sequential" or "associative"')
        return _python_loop(np.asarray(confidence, np.float64), tau, nu, lower, upper, initial)
    if method == "auto":
        # Measured on a 2-core CPU (launch/benchmark_sas.py): lax.scan is several times faster
        # than the associative scan there; accelerators favour the log-depth scan.
        method = "sequential" if jax.default_backend() == "cpu" else "associative"
    shape = np.shape(confidence)
    # One video axis: [2, 3, T] and [6, T] share a compilation (a reshape, no copy).
    videos = jnp.reshape(jnp.asarray(confidence), (-1, shape[-1]))
    params = jnp.array([tau, nu, lower, upper, initial], jnp.float32)
    return _compiled(videos, params, method=method).reshape(shape)


def _check_params(tau, nu, lower, upper, initial):
    tau, nu, lower, upper = float(tau), float(nu), float(lower), float(upper)
    if not 0.0 <= tau < 1.0:
        # tau = 1 divides by zero: no confidence could ever move the score up.
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    if not nu > 0.0 or not math.isfinite(nu):
        raise ValueError(f"nu must be finite and > 0, got {nu}")
    if not (math.isfinite(lower) and math.isfinite(upper) and lower <= upper):
        raise ValueError(f"need finite lower <= upper, got lower={lower}, upper={upper}")
    initial = lower if initial is None else float(initial)
    if not lower <= initial <= upper:
        raise ValueError(f"initial must be in [lower, upper] = [{lower}, {upper}], got {initial}")
    return tau, nu, lower, upper, initial


def _check_confidence(confidence):
    if confidence.size == 0:
        return
    nan = np.isnan(confidence) if np.issubdtype(confidence.dtype, np.inexact) else np.zeros(1, bool)
    if nan.any():
        where = tuple(int(i) for i in np.argwhere(nan)[0])
        raise ValueError(f"confidence has {int(nan.sum())} NaN value(s), first at index {where}")
    low, high = float(confidence.min()), float(confidence.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"confidence must be in [0, 1], got values in [{low}, {high}]")


def _increments(confidence, tau, nu):
    """The paper's signed step per frame: +nu * Delta+ or -nu * Delta-."""
    up = nu * (confidence - tau) / (1.0 - tau)
    down = -nu * (1.0 - confidence - tau) / (1.0 - tau)
    return jnp.where(confidence >= tau, up, down)


@functools.partial(jax.jit, static_argnames=("method",))
def _compiled(confidence, params, *, method):
    """[V, T] confidences -> [V, T] scores; params = [tau, nu, lower, upper, initial].

    Parameters are traced, not static, so a sweep over tau or nu reuses one compilation
    per shape (the associative scan takes seconds to compile on a 2-core CPU).
    """
    tau, nu, lower, upper, initial = params
    increments = _increments(confidence.astype(jnp.float32), tau, nu)
    if method == "sequential":
        x = _sequential(increments, lower, upper, initial)
    else:
        x = _associative(increments, lower, upper, initial)
    return jax.nn.sigmoid(x)


def _sequential(increments, lower, upper, initial):
    """lax.scan over frames; each step updates every video at once.

    Cost: T loop iterations of a [videos]-sized clip, about 1 us each on CPU at 128
    videos, plus two transposes. Unrolling (4, 8, 16, 32 steps per iteration) was
    measured slower on CPU (128 x 10,000: 10 ms plain, 14-36 ms unrolled), so none.
    """

    def step(x, a):
        x = jnp.clip(x + a, lower, upper)
        return x, x

    x0 = jnp.full(increments.shape[:-1], initial, increments.dtype)
    _, xs = lax.scan(step, x0, increments.T)  # [T, V]: one transpose pass each way
    return xs.T


def _compose(earlier, later):
    """Compose clipped shifts f_i(x) = clip(x + a_i, l_i, h_i), l_i <= h_i, as later(earlier(x)).

    Each argument stacks (a, l, h) on its leading axis: [3, ...].

    clip(clip(x + a1, l1, h1) + a2, l2, h2) = clip(clip(x + a1 + a2, l1 + a2, h1 + a2), l2, h2),
    and two clips compose as clip(clip(y, A, B), C, D) = clip(y, clip(A, C, D), clip(B, C, D))
    for A <= B, C <= D (overlapping intervals give [max(A, C), min(B, D)]; disjoint ones
    collapse to the nearer end of [C, D], a constant map). So the composition is
        a = a1 + a2,  l = clip(l1 + a2, l2, h2),  h = clip(h1 + a2, l2, h2),
    again a clipped shift with l <= h (clip is monotone). Associative, as composition is.

    Precision: if a segment's map is not constant, some input passes all its steps unclipped
    (a path clipped once is merged with every path below or above it), so |a| <= UB - LB plus
    one step; and any map with a constant part is constant. So large float32 running sums
    only occur in constant maps (l = h), where clip(., l, h) ignores them.
    """
    a1, l1, h1 = earlier
    a2, l2, h2 = later
    return jnp.stack([a1 + a2, jnp.clip(l1 + a2, l2, h2), jnp.clip(h1 + a2, l2, h2)])


def _associative(increments, lower, upper, initial):
    """All prefix compositions in O(log T) depth and O(T) work, then applied to x_0.

    The three parameters travel as one stacked [3, V, T] array rather than a tuple of three:
    the scan then slices one array per level, which compiled 3.7x faster on a 2-core CPU
    (9 s instead of 35 s at T=10,000, under load) at the same run time (measured).
    Memory: the [3, V, T] stack plus the scan's temporaries, about 2x that.
    """
    maps = jnp.stack([increments, jnp.full_like(increments, lower), jnp.full_like(increments, upper)])
    shift, low, high = lax.associative_scan(_compose, maps, axis=-1)
    return jnp.clip(initial + shift, low, high)


def _python_loop(confidence, tau, nu, lower, upper, initial):
    """Frame-by-frame Python loop in float64, one video at a time (the benchmark's baseline)."""
    rows = confidence.reshape(-1, confidence.shape[-1]).tolist()
    scores = []
    for row in rows:
        x = initial
        out = []
        for sigma in row:
            if sigma >= tau:
                x += nu * (sigma - tau) / (1.0 - tau)
            else:
                x -= nu * (1.0 - sigma - tau) / (1.0 - tau)
            x = min(max(x, lower), upper)
            out.append(1.0 / (1.0 + math.exp(-x)))
        scores.append(out)
    return np.asarray(scores, np.float64).reshape(confidence.shape)
