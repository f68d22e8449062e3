"""The analysis pipeline: micro-batched ticks over every camera's frames.

One thread runs ticks. A tick takes up to ``max_batch`` validated frames from
the shared queue (waiting at most ``tick_s`` after the first for more), then:

1. answers frames already committed (a resend after a reconnect) from the
   store, without scoring them again;
2. decodes all the others in one jitted call (``decoding.BucketedDecoder``);
3. computes optical flow from each camera's previous reconstruction, in a
   thread pool (OpenCV releases the GIL); a camera's first frame, a new camera
   run or a gap of more than ``max_flow_gap`` frames gets zero flow, since flow
   across a long gap measures the gap, not motion;
4. scores the batch (``scorer.FrameScorer``);
5. steps each camera's SAS and alert state in frame order (``camera_state``);
6. commits results, states and alerts in one transaction (``alert_store``);
7. only then sends each frame's response to its camera's session.

Frames of one camera stay in order: the queue is FIFO and a tick processes
them in arrival order, the flow of a frame using the reconstruction of the
camera's frame before it even when both are in the same tick.

Back-pressure: the queue holds at most ``max_queue`` frames and each camera
at most ``max_pending_per_camera`` of them (one fast camera cannot starve
the rest). A frame over either bound is answered at once with status
"overloaded" and a ``retry_after_ms`` hint instead of waiting, and a frame
that has waited more than ``max_queue_delay_s`` when its tick starts is
dropped the same way: late scores are worth less than dropped frames for a
live camera, latency stays bounded by about that delay plus one tick, and
memory stays bounded. The camera then sheds frames itself for the hinted time.

Failures: a tick that raises is run again one camera at a time,
so a fault caused by one camera's frames (or one that has passed) costs no
other camera anything; a camera whose frames still fail alone gets them
answered with a retryable error ("internal", "store" or "scorer"). Its later
frames of the same run are then answered "resend" (retryable, not scored)
until the first failed frame comes back: the camera resends its window in
order, so the SAS still sees every frame once and in order. After
``max_frame_attempts`` failures of one frame the error is final (a poison
frame cannot loop), and the hold lapses after ``resend_hold_s`` (a camera that
gave up or went away).

Shutdown: ``close()`` stops intake (new frames get "shutting_down", which a
camera resends after reconnecting) and the tick thread drains the queue,
committing and answering everything already accepted, before it exits.
"""

import collections
import concurrent.futures
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import uuid
from typing import NamedTuple

import numpy as np

from ppvad_jax.data import flow as flow_lib
from ppvad_jax.serving import camera_state, wire
from ppvad_jax.serving import scorer as scorer_lib

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Request:
    session: object  # anything with ``deliver(response_dict)``
    message: wire.FrameMessage
    latent: np.ndarray  # float32 [h, w, c], validated
    received: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    max_batch: int = 32
    tick_s: float = 0.01  # how long a tick waits for more frames after its first
    max_queue: int = 256
    max_pending_per_camera: int = 32
    max_queue_delay_s: float = 1.0  # a frame that waited longer is dropped ("overloaded"), not scored late
    max_flow_gap: int = 3  # frames; a larger gap gets zero flow
    flow_method: str = "dis"
    flow_bound: float = 16.0
    flow_threads: int = 2
    max_frame_attempts: int = 3  # failed ticks of one frame before its error is final
    resend_hold_s: float = 30.0  # how long a camera's later frames wait for its failed frame


class TickError(Exception):
    """A tick's failure, with the error code its frames are answered with."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)


@dataclasses.dataclass
class _Hold:
    """A camera whose frame failed: its later frames of this run wait for that frame's resend."""

    run_id: str
    frame_index: int
    failures: int
    until: float  # time.monotonic() after which the hold lapses


def _by_camera(batch):
    groups = {}
    for request in batch:
        groups.setdefault(request.message.camera_id, []).append(request)
    return groups


@dataclasses.dataclass
class _Previous:
    run_id: str
    frame_index: int
    reconstruction: np.ndarray


def _result_response(status, result, *, alert=None, latency_ms=None, batch=None):
    out = wire.make_response(
        status,
        camera_id=result.camera_id,
        run_id=result.run_id,
        frame_index=result.frame_index,
        confidence=result.confidence,
        accumulator=result.accumulator,
        score=result.score,
        alert=None
        if result.alert_event is None
        else {
            "id": result.alert_id,
            "event": result.alert_event,
            **({"start_frame": alert.start_frame, "peak_score": alert.peak_score} if alert else {}),
        },
    )
    if latency_ms is not None:
        out.update(server_ms=round(latency_ms, 3), batch=batch)
    return out


# --- the steps of a tick that touch no engine state, in tick order ---------------------------


class _Answer(NamedTuple):
    """A frame's response, sent to its camera's session only after the tick's commit."""

    request: Request
    response: dict


class _FrameKey(NamedTuple):
    """Names one frame: the store's key of its result."""

    camera_id: str
    run_id: str | None  # None: no frame of this camera processed yet
    frame_index: int


def _frame_key(m: wire.FrameMessage) -> _FrameKey:
    return _FrameKey(m.camera_id, m.run_id, m.frame_index)


class _Triage(NamedTuple):
    """A tick's frames sorted, each list in arrival order."""

    fresh: list[Request]  # to decode, score and commit
    duplicates: list[Request]  # repeats of a fresh frame: answered with its result
    answers: list[_Answer]  # answered without scoring


def _replayed_duplicates(duplicates: list[Request], scored: list[_Answer]) -> list[_Answer]:
    """Answers each repeat of a frame scored in the same tick with that frame's response."""
    by_key = {_frame_key(a.request.message): a.response for a in scored}
    answers = []
    for request in duplicates:
        first = by_key[_frame_key(request.message)]
        answers.append(_Answer(request, {**first, "status": first["status"].replace("ok", "replayed")}))
    return answers


class _FlowInputs(NamedTuple):
    """Each fresh frame's previous reconstruction (None: zero flow), and the table after the tick."""

    previous_frames: list[np.ndarray | None]
    previous: dict[str, _Previous]


class _Stepped(NamedTuple):
    """A tick's new camera states, frame results and alerts, computed but not yet committed."""

    states: dict[str, camera_state.CameraState]
    results: list[camera_state.FrameResult]
    alerts: dict[str, camera_state.Alert]  # by id: the last version of an alert touched twice


class _Scored(NamedTuple):
    """The answers of a tick's scored frames, and the streams to close once they are sent."""

    answers: list[_Answer]
    moved_sessions: list[object]  # streams of cameras another server has claimed


class _StepClock:
    """Seconds spent in each step of a tick, for ``Engine.stats``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = now - self._last
        self._last = now


def _flow_partner(previous: _Previous | None, m: wire.FrameMessage, *, max_gap: int) -> np.ndarray | None:
    """The reconstruction to take ``m``'s flow from; None across a new run or a gap, since flow
    across a long gap measures the gap, not motion."""
    usable = (
        previous is not None
        and previous.run_id == m.run_id
        and 0 < m.frame_index - previous.frame_index <= max_gap
    )
    return previous.reconstruction if usable else None


def _flow_inputs(
    fresh: list[Request], reconstructions: np.ndarray, previous: dict[str, _Previous], *, max_gap: int
) -> _FlowInputs:
    """Pairs each frame with its camera's previous reconstruction, following the frames of one
    camera within the tick."""
    previous = dict(previous)
    previous_frames = []
    for request, reconstruction in zip(fresh, reconstructions, strict=True):
        m = request.message
        previous_frames.append(_flow_partner(previous.get(m.camera_id), m, max_gap=max_gap))
        previous[m.camera_id] = _Previous(m.run_id, m.frame_index, reconstruction)
    return _FlowInputs(previous_frames, previous)


def _optical_flow(previous: np.ndarray | None, current: np.ndarray, *, method: str) -> np.ndarray:
    """float32 [h, w, 2] flow from ``previous`` to ``current``; zeros without a previous frame."""
    if previous is None:
        return np.zeros((*current.shape[:2], 2), np.float32)
    return flow_lib.optical_flow(previous, current, method=method)


def _advance_cameras(
    fresh: list[Request],
    confidences: np.ndarray,
    states: dict[str, camera_state.CameraState],
    params: camera_state.SasParams,
) -> _Stepped:
    """Steps each camera's SAS and alert state through its frames, in frame order."""
    states = dict(states)
    results, alerts = [], {}
    for request, confidence in zip(fresh, confidences, strict=True):
        m = request.message
        state = states.get(m.camera_id) or camera_state.initial_state(m.camera_id, params)
        state, result, alert = camera_state.advance(
            state, confidence=float(confidence), run_id=m.run_id, frame_index=m.frame_index,
            timestamp=m.timestamp, params=params,
        )  # fmt: skip
        states[m.camera_id] = state
        results.append(result)
        if alert is not None:
            alerts[alert.alert_id] = alert
    return _Stepped(states, results, alerts)


def _restore_moved(table: dict, before: dict, moved: set[str]) -> dict:
    """``table`` with the entries of the ``moved`` cameras as they were ``before`` the tick."""
    kept = {camera: value for camera, value in table.items() if camera not in moved}
    return kept | {camera: before[camera] for camera in moved if camera in before}


def _moved_response(result: camera_state.FrameResult) -> dict:
    """Not final for the camera: the frame stays in its window and is resent after it reconnects
    (through the load balancer, to the server that claimed it)."""
    return wire.make_response(
        "shutting_down", camera_id=result.camera_id, run_id=result.run_id,
        frame_index=result.frame_index,
        message="this camera is now served by another server: reconnect and resend",
    )  # fmt: skip


def _scored_answers(fresh: list[Request], stepped: _Stepped, moved: set[str], *, now: float) -> _Scored:
    """The committed tick's answers: results, or "shutting_down" for cameras moved elsewhere."""
    answers, moved_sessions = [], []
    for request, result in zip(fresh, stepped.results, strict=True):
        if result.camera_id in moved:
            answers.append(_Answer(request, _moved_response(result)))
            moved_sessions.append(request.session)
            continue
        alert = stepped.alerts.get(result.alert_id) if result.alert_id else None
        latency_ms = 1000 * (now - request.received)
        response = _result_response("ok", result, alert=alert, latency_ms=latency_ms, batch=len(fresh))
        answers.append(_Answer(request, response))
    return _Scored(answers, moved_sessions)


class Engine:
    """Owns the queue, the tick thread, the per-camera state and the store writes."""

    def __init__(self, *, decoder, scorer, store, sas_params, options=EngineOptions(), owner=None):
        # This server's name in the store's camera_owner table (fencing; alert_store.py).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The operator console's live view (operator_store.LiveRecorder: rates, thumbnails), set by
        # the server once it knows this owner; None: nothing recorded.
        self.live = None
        self.decoder = decoder
        self.scorer = scorer
        self.store = store
        self.sas_params = sas_params
        self.options = options
        self._states = store.load_states()  # camera -> CameraState, as last committed
        self._reload = set()  # cameras whose state is re-read from the store before the next tick
        self._previous = {}  # camera -> _Previous (in memory: a restarted server starts with zero flow)
        self._holds = {}  # tick thread only: camera -> _Hold
        self._queue = collections.deque()
        self._pending = collections.Counter()
        self._cond = threading.Condition()
        self._closing = False
        self._flow_pool = concurrent.futures.ThreadPoolExecutor(max(1, options.flow_threads))
        self.stats = collections.Counter()
        self._thread = threading.Thread(target=self._run, name="engine-ticks", daemon=True)
        self._thread.start()

    # --- intake (any thread) ------------------------------------------------------------------

    def submit(self, request):
        """Queues a validated frame; returns None, or an immediate response dict if not queued."""
        camera = request.message.camera_id
        with self._cond:
            if self._closing:
                self.stats["shutting_down"] += 1
                return wire.make_response(
                    "shutting_down", camera_id=camera, run_id=request.message.run_id,
                    frame_index=request.message.frame_index,
                    message="server is shutting down; resend this frame after reconnecting",
                )  # fmt: skip
            full = len(self._queue) >= self.options.max_queue
            if full or self._pending[camera] >= self.options.max_pending_per_camera:
                self.stats["overloaded"] += 1
                # A hint, not a promise: the queue ahead of this camera at one batch per tick.
                ahead = len(self._queue) if full else self._pending[camera]
                return wire.make_response(
                    "overloaded", camera_id=camera, run_id=request.message.run_id,
                    frame_index=request.message.frame_index,
                    message=f"server overloaded ({'queue full' if full else 'too many frames pending'}): "
                    "frame dropped, slow down",
                    retry_after_ms=int(1000 * max(0.05, ahead / max(1, self.options.max_batch) * 0.1)),
                )  # fmt: skip
            self._queue.append(request)
            self._pending[camera] += 1
            self._cond.notify()
        if self.live is not None:
            self.live.received(camera, request.message.mechanism)
        return None

    def claim(self, camera_id):
        """A camera's stream opened here: claim it in the store and re-read its committed state
        before scoring its frames.

        With one server this reads back what is already in memory. With a shared store
        (PostgreSQL, several servers) the camera may have been scored by another server since
        this one started (its server went down, the load balancer moved it): its SAS
        accumulator and open alert continue from there, not from this server's stale copy. The
        claim also fences the server it came from: that one's later commits for this camera are
        refused, its frames answered "shutting_down" and its stream closed, so the camera
        reconnects and resends them here. Costs one store write and read per stream opened."""
        with self._cond:
            self._reload.add(camera_id)

    def close(self, timeout=None):
        """Stops intake, drains and answers every queued frame, stops the tick thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._flow_pool.shutdown(wait=True)

    # --- tick thread ---------------------------------------------------------------------------

    def _take_batch(self):
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait(0.1)
            deadline = time.monotonic() + self.options.tick_s
            while len(self._queue) < self.options.max_batch and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(len(self._queue), self.options.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self):
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._tick_isolated(batch)
            finally:
                with self._cond:
                    for request in batch:
                        self._pending[request.message.camera_id] -= 1

    def _tick_isolated(self, batch):
        """Runs a tick; if it fails, each camera's frames again as a tick of their own (module
        docstring). Cost: nothing when a tick succeeds; one more tick per camera when it fails."""
        try:
            self._tick(batch)
            return
        except Exception as e:  # never let one tick kill the server: isolate, answer, go on
            failure = e
        groups = _by_camera(batch)
        if len(groups) == 1:
            self._fail(batch, failure)
            return
        log.warning("tick of %d cameras failed (%s); retrying each camera alone", len(groups), failure)
        self.stats["isolated_retries"] += 1
        for group in groups.values():
            try:
                self._tick(group)
            except Exception as e:
                self._fail(group, e)

    def _fail(self, group, error):
        """Answers one camera's frames of a failed tick; holds its later frames for the resend."""
        log.error("tick failed for camera %s", group[0].message.camera_id, exc_info=error)
        if isinstance(error, TickError):
            code, message = error.code, str(error)
        else:
            code, message = "internal", f"server error: {type(error).__name__}: {error}"
        last_run = group[-1].message.run_id
        first = min(r.message.frame_index for r in group if r.message.run_id == last_run)
        camera = group[0].message.camera_id
        hold = self._holds.get(camera)
        if hold is None or hold.run_id != last_run:
            hold = _Hold(last_run, first, 0, 0.0)
        hold.frame_index = min(hold.frame_index, first)
        hold.failures += 1
        hold.until = time.monotonic() + self.options.resend_hold_s
        retryable = hold.failures < self.options.max_frame_attempts
        if retryable:
            self._holds[camera] = hold
        else:
            self._holds.pop(camera, None)
            message += f" (failed {hold.failures} times: final)"
        for request in group:
            self._answer(request, self._error(request, code, message, retryable=retryable))

    def _error(self, request, code, message, **extra):
        self.stats[f"error_{code}"] += 1
        return wire.make_response(
            "error", code=code, message=message, camera_id=request.message.camera_id,
            run_id=request.message.run_id, frame_index=request.message.frame_index, **extra,
        )  # fmt: skip

    def _held(self, m, holds, now):
        """A "resend" answer if ``m`` waits behind its camera's failed frame; updates ``holds``."""
        hold = holds.get(m.camera_id)
        if hold is None:
            return None
        if hold.run_id != m.run_id or now > hold.until or m.frame_index <= hold.frame_index:
            del holds[m.camera_id]  # a new run, a lapsed hold, or the failed frame itself is back
            return None
        return f"frame {hold.frame_index} of this run failed; resend from it, in order"

    def _answer(self, request, response):
        try:
            request.session.deliver(response)
        except Exception:  # a closed session: the result is committed and is replayed on resend
            log.debug("could not deliver to %s", request.message.camera_id, exc_info=True)

    def _tick(self, batch: list[Request]) -> None:
        """One tick (module docstring); a tick that raises has answered none of its frames."""
        self._refresh_claimed_states()
        now = time.monotonic()
        holds = dict(self._holds)  # lifted here, made final only if this tick succeeds
        triage = self._triage(batch, holds=holds, now=now)
        answers, moved_sessions = list(triage.answers), []
        if triage.fresh:
            scored = self._score_and_commit(triage.fresh)
            answers += scored.answers + _replayed_duplicates(triage.duplicates, scored.answers)
            moved_sessions = scored.moved_sessions
            if triage.duplicates:
                self.stats["replayed"] += len(triage.duplicates)
        self._holds = {c: h for c, h in self._holds.items() if c in holds}  # this tick succeeded
        for request, response in answers:
            self._answer(request, response)
        # Streams of cameras another server claimed: closed after their answers went out.
        for session in moved_sessions:
            session.close(shutting_down=True)

    def _refresh_claimed_states(self) -> None:
        """Claims the cameras whose streams opened since the last tick and re-reads their state.

        Claims precede their stream's frames (same thread), so every claim behind this batch is
        in the set by now. A claim the store could not take is tried again before the next tick."""
        with self._cond:
            reload, self._reload = self._reload, set()
        if not reload:
            return
        refreshed = {}
        try:
            for camera in sorted(reload):
                state = self.store.claim(camera, self.owner)
                if state is not None:
                    refreshed[camera] = state
        except Exception:  # the store is down: claim again before the next tick
            with self._cond:
                self._reload |= reload - set(refreshed)
            raise
        finally:
            with self._cond:
                self._states = {**self._states, **refreshed}

    def _triage(self, batch: list[Request], *, holds: dict[str, _Hold], now: float) -> _Triage:
        """Sorts a tick's frames, in arrival order, into those to score, repeats of one of those
        within the tick, and those answered without scoring (late, held, replayed, stale)."""
        latest = {c: _FrameKey(c, s.run_id, s.last_frame_index) for c, s in self._states.items()}
        triage, fresh_keys = _Triage([], [], []), set()
        for request in batch:
            key = _frame_key(request.message)
            late = self._late_response(request, now)
            if late is None and key in fresh_keys:  # the same frame twice in one tick
                triage.duplicates.append(request)
                continue
            if late is not None:
                response = late
            else:
                response = self._unscored_response(request, key, holds=holds, latest=latest, now=now)
            if response is not None:
                triage.answers.append(_Answer(request, response))
            else:
                triage.fresh.append(request)
                fresh_keys.add(key)
                latest[key.camera_id] = key
        return triage

    def _late_response(self, request: Request, now: float) -> dict | None:
        """The "overloaded" answer of a frame that waited more than ``max_queue_delay_s``, else
        None: late scores are worth less than dropped frames for a live camera."""
        waited, limit = now - request.received, self.options.max_queue_delay_s
        if waited <= limit:
            return None
        self.stats["overloaded_late"] += 1
        m = request.message
        return wire.make_response(
            "overloaded", camera_id=m.camera_id, run_id=m.run_id, frame_index=m.frame_index,
            message=f"server overloaded: frame waited {waited:.2f} s in the queue (limit "
            f"{limit} s), dropped; slow down",
            retry_after_ms=int(1000 * max(0.1, waited - limit)),
        )  # fmt: skip

    def _unscored_response(
        self,
        request: Request,
        key: _FrameKey,
        *,
        holds: dict[str, _Hold],
        latest: dict[str, _FrameKey],
        now: float,
    ) -> dict | None:
        """The answer of a frame held behind a failed one, already committed, or not after its
        camera's last processed frame; None for a frame to score."""
        held = self._held(request.message, holds, now)
        if held is not None:
            return self._error(request, "resend", held)
        done = self.store.lookup_result(*key)
        if done is not None:
            self.stats["replayed"] += 1
            return _result_response("replayed", done)
        last = latest.get(key.camera_id, _FrameKey(key.camera_id, None, -1))
        if last.run_id == key.run_id and key.frame_index <= last.frame_index:
            return self._error(
                request, "stale",
                f"frame {key.frame_index} is not after this run's last processed frame {last.frame_index}",
            )  # fmt: skip
        return None

    def _score_and_commit(self, fresh: list[Request]) -> _Scored:
        """Decodes, flows, scores, steps and commits ``fresh`` (steps 2-6 of the module
        docstring); returns its answers, which may go out since the commit has returned."""
        clock = _StepClock()
        reconstructions = self.decoder(np.stack([r.latent for r in fresh]))
        clock.lap("decode_s")
        flow_inputs = _flow_inputs(fresh, reconstructions, self._previous, max_gap=self.options.max_flow_gap)
        batch = self._frame_batch(fresh, reconstructions, flow_inputs.previous_frames)
        clock.lap("flow_s")
        confidences = self._score(batch)
        clock.lap("score_s")
        stepped = _advance_cameras(fresh, confidences, self._states, self.sas_params)
        moved = self._commit(fresh, stepped)
        clock.lap("commit_s")
        self._swap_in(stepped.states, flow_inputs.previous, moved)
        if self.live is not None:
            self._record_live(fresh, reconstructions, moved)
        self.stats["frames"] += len(fresh)
        self.stats["ticks"] += 1
        self.stats["alerts_touched"] += len(stepped.alerts)
        self.stats.update(clock.seconds)
        scored = _scored_answers(fresh, stepped, moved, now=time.monotonic())
        if scored.moved_sessions:  # no "moved": 0 in the stats of a server that never lost a camera
            self.stats["moved"] += len(scored.moved_sessions)
        return scored

    def _record_live(self, fresh: list[Request], reconstructions: np.ndarray, moved: set[str]) -> None:
        """Hands the committed frames' reconstructions (not those of moved cameras) to the live view."""
        frames = []
        for r, reconstruction in zip(fresh, reconstructions, strict=True):
            m = r.message
            if m.camera_id not in moved:
                alert = self._states[m.camera_id].open_alert
                frames.append(
                    (m.camera_id, m.frame_index, m.timestamp, reconstruction, alert and alert.alert_id)
                )
        self.live.scored(frames)

    def _frame_batch(
        self, fresh: list[Request], reconstructions: np.ndarray, previous_frames: list[np.ndarray | None]
    ) -> scorer_lib.FrameBatch:
        """What the scorer sees: the reconstructions and their flows (computed in the thread pool,
        since OpenCV releases the GIL)."""
        flow_fn = functools.partial(_optical_flow, method=self.options.flow_method)
        flows = np.stack(list(self._flow_pool.map(flow_fn, previous_frames, reconstructions)))
        flow_images = np.stack([flow_lib.encode_flow(f, bound=self.options.flow_bound) for f in flows])
        return scorer_lib.FrameBatch(
            reconstructions=reconstructions,
            flows=flows,
            flow_images=flow_images,
            camera_ids=tuple(r.message.camera_id for r in fresh),
        )

    def _score(self, batch: scorer_lib.FrameBatch) -> np.ndarray:
        """The batch's checked confidences; any failure is the "scorer" error of its frames."""
        try:
            return scorer_lib.check_confidences(self.scorer(batch), len(batch.camera_ids))
        except Exception as e:
            raise TickError("scorer", f"scorer {self.scorer.name} failed: {e}") from e

    def _commit(self, fresh: list[Request], stepped: _Stepped) -> set[str]:
        """Writes the tick in one transaction; returns the cameras another server claimed since,
        of which nothing was written."""
        touched = {r.message.camera_id for r in fresh}
        try:
            return self.store.commit_tick(
                stepped.results,
                [stepped.states[c] for c in sorted(touched)],
                list(stepped.alerts.values()),
                owner=self.owner,
            )
        except Exception as e:
            raise TickError("store", f"alert store commit failed, frame not processed: {e}") from e

    def _swap_in(
        self, states: dict[str, camera_state.CameraState], previous: dict[str, _Previous], moved: set[str]
    ) -> None:
        """Makes a committed tick's camera states and reconstructions current, but for the cameras
        moved to another server: those keep what they had, since nothing of them was written."""
        for camera in moved:
            log.warning("camera %s was claimed by another server; closing its stream here", camera)
        states = _restore_moved(states, self._states, moved)
        with self._cond:
            self._states = states
        self._previous = _restore_moved(previous, self._previous, moved)
