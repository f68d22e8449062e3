"""Per-camera state on the server: the SAS accumulator and the open alert.

One frame at a time, pure functions of (state, confidence) -> new state, so
the engine can compute a whole tick, commit it, and only then swap the new
states in: a crash between the two leaves the committed state, never half of
one.

SAS (paper section 3.4.5): ``x += nu (s - tau) / (1 - tau)`` if ``s >= tau``
else ``x -= nu (1 - s - tau) / (1 - tau)``, clipped to [LB, UB]; the score is
``sigmoid(x)``. The step is ``evaluation.sas.sigmoidal_anomaly_score`` run on
one frame from the stored accumulator (its float64 "python" method, what an
online server runs); that function returns the score, so the accumulator is
recovered as ``logit(score)``, exact to ~1e-15 in float64, and re-clipped.
A new camera starts at LB, the evaluation's convention (a camera starts
"normal"; 4 frames of confidence 1 at the paper's values raise the score
above 0.5).

Alerts: an alert opens on the first frame whose score exceeds the threshold
(0.5), is extended (end frame / time, peak score) on every frame while the
score stays at or above it, and closes on the first frame below it. Alert
ids are ``camera:run:start_frame``: deterministic, so a replayed frame or a
second server writing to a shared store names the same alert.
"""

import dataclasses
import math

import numpy as np

from ppvad_jax.evaluation import sas


@dataclasses.dataclass(frozen=True)
class SasParams:
    tau: float = 0.5  # sensibility (the paper's)
    nu: float = 2.0  # reactivity (the paper's)
    lower: float = -7.0
    upper: float = 7.0
    alert_threshold: float = 0.5  # an alert is open while the score is above this


@dataclasses.dataclass(frozen=True)
class Alert:
    alert_id: str
    camera_id: str
    run_id: str  # the run the alert started in; frame numbers restart with a new camera run
    start_frame: int
    start_time: float
    end_frame: int
    end_time: float
    peak_score: float
    is_open: bool


@dataclasses.dataclass(frozen=True)
class CameraState:
    camera_id: str
    accumulator: float
    run_id: str = ""
    last_frame_index: int = -1
    last_time: float = 0.0
    open_alert: Alert | None = None


@dataclasses.dataclass(frozen=True)
class FrameResult:
    camera_id: str
    run_id: str
    frame_index: int
    timestamp: float
    confidence: float
    accumulator: float
    score: float
    alert_id: str | None  # the alert this frame opened, extended or closed; None outside alerts
    alert_event: str | None  # "opened" | "extended" | "closed" | None


def initial_state(camera_id, params):
    return CameraState(camera_id=camera_id, accumulator=params.lower)


def sas_step(accumulator, confidence, params):
    """``(new_accumulator, score)`` after one frame of confidence ``confidence``."""
    score = float(
        sas.sigmoidal_anomaly_score(
            np.asarray([confidence], np.float64),
            tau=params.tau,
            nu=params.nu,
            lower=params.lower,
            upper=params.upper,
            initial=min(max(accumulator, params.lower), params.upper),
            method="python",
        )[0]
    )
    # logit(sigmoid(x)): |x| <= 7 keeps the score away from 0 and 1, so this is well conditioned.
    accumulator = math.log(score) - math.log1p(-score)
    return min(max(accumulator, params.lower), params.upper), score


def advance(state, *, confidence, run_id, frame_index, timestamp, params):
    """``(new_state, FrameResult)`` for one scored frame of this camera."""
    accumulator, score = sas_step(state.accumulator, confidence, params)
    alert, event = state.open_alert, None
    if alert is None and score > params.alert_threshold:
        alert = Alert(
            alert_id=f"{state.camera_id}:{run_id}:{frame_index}",
            camera_id=state.camera_id,
            run_id=run_id,
            start_frame=frame_index,
            start_time=timestamp,
            end_frame=frame_index,
            end_time=timestamp,
            peak_score=score,
            is_open=True,
        )
        event = "opened"
    elif alert is not None and score >= params.alert_threshold:
        alert = dataclasses.replace(
            alert, end_frame=frame_index, end_time=timestamp, peak_score=max(alert.peak_score, score)
        )
        event = "extended"
    elif alert is not None:
        alert = dataclasses.replace(alert, is_open=False)
        event = "closed"
    new_state = dataclasses.replace(
        state,
        accumulator=accumulator,
        run_id=run_id,
        last_frame_index=frame_index,
        last_time=timestamp,
        open_alert=alert if alert is not None and alert.is_open else None,
    )
    result = FrameResult(
        camera_id=state.camera_id,
        run_id=run_id,
        frame_index=frame_index,
        timestamp=timestamp,
        confidence=float(confidence),
        accumulator=accumulator,
        score=score,
        alert_id=alert.alert_id if alert is not None else None,
        alert_event=event,
    )
    return new_state, result, alert if event is not None else None
