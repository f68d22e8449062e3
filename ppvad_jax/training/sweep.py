"""Noise-multiplier sweeps: one trained and measured autoencoder per (optimizer, noise multiplier).

``run_sweep(config, workdir)`` (``launch.sweep``, ``configs/sweep_noise.py``):

1. **Epsilon first.** Every point's epsilon is computed before any training,
   with the trainer's own accountant call (``autoencoder.privacy_report``) on
   the planned steps, sampling rate and delta, and printed as a table: a user
   sees what the sweep will claim before paying for it. The trainer accounts
   the same planned steps even when its patience rules stop a point early
   (the stopping choice looks at noisy iterates: ``privacy.plan``), so the two
   epsilons are equal. Each point draws its own secret noise and batch seed
   (``privacy.run_secret``): each point's epsilon holds for that point alone,
   and releasing several points' models composes their epsilons.
2. **One workdir per point**, ``W/points/<name>``: the autoencoder trainer's
   outputs (it resumes from its checkpoints), ``privacy.json``, optionally a
   classifier workdir, then ``result.json`` and last a ``DONE`` marker. A point
   with ``DONE`` is skipped, so an interrupted sweep resumes; a stage whose
   outputs exist (export, privacy.json) is not redone. A point whose stored
   autoencoder config differs from the current one is refused before anything
   runs (its checkpoints would silently mix two configs).
3. **Failures are recorded, not fatal**: a failing point writes ``error.json``
   (stage, error, traceback) and the others go on; the next run retries it.
4. **Reports**: ``W/results.csv``, ``W/results.md``, plots, ``W/timing.json``
   (``evaluation.sweep_report``).

Privacy is measured per point by ``evaluation.autoencoder_privacy`` on the
point's exported halves: faces on reconstructions, re-identification top-1,
membership-inference AUC (and, per latent-LDP level, the same again).

Parallelism. A point is a whole training run, so points are independent
processes at best: with several GPUs, one spawned process per GPU, pinned with
``CUDA_VISIBLE_DEVICES`` (the default); on CPU, ``parallel=N`` spawned
processes. Otherwise points run one by one in this process (a TPU host also:
the trainer already shards each point over all its chips). ``timing.json``
holds the wall time of the last run that ran points against the sum of those
points' own times (the one by one baseline; every run is appended to
``timing_history.jsonl``). On shared cores each point is slower than alone, so
that sum overstates a true sequential run: time one with ``parallel=1`` too.
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import pathlib
import sys
import time
import traceback

import jax
import ml_collections
import numpy as np

from ppvad_jax.data import autoencoder_data
from ppvad_jax.evaluation import (
    anomaly_report,
    autoencoder_privacy,
    faces,
    privacy_report,
    reidentification,
    sweep_report,
)
from ppvad_jax.privacy import accounting, latent_ldp
from ppvad_jax.training import autoencoder as ae_trainer
from ppvad_jax.training import classifier as classifier_trainer
from ppvad_jax.training import optimizers

DONE, RESULT, ERROR, PRIVACY, POINT_CONFIG = "DONE", "result.json", "error.json", "privacy.json", "point.json"
CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    optimizer: str
    noise_multiplier: float | None  # None: not private (adam)
    config: ml_collections.ConfigDict  # this point's autoencoder config


# --- The grid ---------------------------------------------------------------------------------


def _names(values):
    """A tuple of names from a config tuple; ``--config.x=a,b`` arrives as ``("a,b",)``."""
    out = []
    for value in values:
        out += [v.strip() for v in str(value).split(",") if v.strip()]
    return list(dict.fromkeys(out))


def grid(config):
    """The sweep's points, adam once; clear errors for a bad grid (before anything runs)."""
    names = _names(config.optimizers)
    if not names:
        raise ValueError("config.optimizers is empty: name at least one of adam, dpsgd, dpadam, dpadagrad")
    for name in names:
        optimizers.is_private(name)  # raises on an unknown optimizer
    sigmas = [float(s) for s in config.noise_multipliers]
    bad = [s for s in sigmas if not math.isfinite(s) or s < 0]
    if bad:
        raise ValueError(f"noise multipliers must be finite and >= 0, got {bad}")
    if any(optimizers.is_private(n) for n in names) and not sigmas:
        raise ValueError("config.noise_multipliers is empty but the grid has DP optimizers")
    for level in config.latent_ldp.noise_multipliers:
        if not math.isfinite(float(level)) or float(level) < 0:
            raise ValueError(f"latent_ldp.noise_multipliers must be finite and >= 0, got {level}")
    backends = _names(config.privacy.face_backends)
    unknown = set(backends) - set(faces.available_backends())
    if not backends or unknown:
        raise ValueError(f"privacy.face_backends {backends}: use some of {faces.available_backends()}")
    if config.privacy.reid_feature not in reidentification.FEATURES:
        raise ValueError(f"privacy.reid_feature must be one of {reidentification.FEATURES}")
    points = {}
    for optimizer in names:
        for sigma in sigmas if optimizers.is_private(optimizer) else [None]:
            ae = ml_collections.ConfigDict(config.autoencoder.to_dict())
            ae.optimizer = optimizer
            name = optimizer
            if sigma is not None:
                ae.dp.noise_multiplier = sigma
                name = f"{optimizer}_nm{sigma:g}"
            points.setdefault(name, Point(name, optimizer, sigma, ae))
    return list(points.values())


def plan_point(point, *, previous=None):
    """Planned steps and the epsilon the trainer will report for them, computed without training.

    The steps follow the trainer's rule (``max_epochs`` epochs of ``ceil(1/q)``
    steps, capped by ``max_steps``); the epsilon is ``autoencoder.privacy_report``
    itself, so the two numbers cannot drift apart. It costs 1-5 s per point
    (three RDP and one PLD evaluation): ``previous``, the entry an earlier run
    planned for the same config, data size and steps (``plan_key``), is reused.
    """
    ae = point.config
    splits, _ = ae_trainer.split_units(ae)
    num_units = len(splits["train"])
    sampling_rate = min(1.0, ae.dp.expected_batch_size / num_units)
    planned_steps = ae_trainer.planned_steps(ae, sampling_rate)
    key = hashlib.sha256(
        json.dumps([ae.to_json_best_effort(sort_keys=True), num_units, planned_steps]).encode()
    ).hexdigest()
    if previous and previous.get("plan_key") == key:
        return previous
    report = ae_trainer.privacy_report(
        ae, num_units=num_units, steps_run=planned_steps, planned=planned_steps
    )
    return {
        "point": point.name,
        "optimizer": point.optimizer,
        "train_units": num_units,
        "sampling_rate": sampling_rate,
        **accounting.json_safe(report),
        "planned_steps": planned_steps,
        "noise_multiplier": point.noise_multiplier,
        "plan_key": key,
    }


def ldp_plan(config):
    """Per-frame epsilon of each latent-LDP level (independent of the bound C: noise scales with it)."""
    out = []
    for level in config.latent_ldp.noise_multipliers:
        ldp = _ldp_config(config, float(level), l2_bound=1.0)
        out.append(accounting.json_safe(latent_ldp.epsilon(ldp)))
    return out


def _ldp_config(config, level, *, l2_bound):
    return latent_ldp.LatentLdpConfig(
        enabled=True,
        l2_bound=l2_bound,
        noise_multiplier=level,
        delta=config.latent_ldp.delta,
        nonnegative=config.latent_ldp.nonnegative,
    )


# --- Privacy of one point ---------------------------------------------------------------------


def privacy_settings(config):
    """What the privacy stage depends on besides the autoencoder: a changed setting redoes it."""
    return {"privacy": config.privacy.to_dict(), "latent_ldp": config.latent_ldp.to_dict()}


def evaluate_privacy(point_dir, ae_config, config, ae_metrics):
    """``autoencoder_privacy.evaluate`` on the point's export and splits; saves the grid samples."""
    settings = ml_collections.ConfigDict(config.privacy.to_dict())
    settings.face_backends = tuple(_names(settings.face_backends))
    splits, _ = ae_trainer.split_units(ae_config)
    result, samples = autoencoder_privacy.evaluate(
        point_dir,
        splits=splits,
        source=autoencoder_data.FrameSource(ae_config.data.dataset_dir, ae_config.data.source_split),
        trainer_quality=ae_metrics,
        settings=settings,
        ldp_levels=tuple(config.latent_ldp.noise_multipliers),
        ldp_l2_bound=config.latent_ldp.l2_bound,
        ldp_delta=config.latent_ldp.delta,
        ldp_nonnegative=config.latent_ldp.nonnegative,
    )
    np.savez_compressed(pathlib.Path(point_dir) / "recon_samples.npz", **samples)
    return result


# --- The optional classifier ------------------------------------------------------------------


def classifier_config(point_dir, ae_config, config):
    """The point's classifier config and its workdir (named by a hash of the config: no stale resume)."""
    cls = ml_collections.ConfigDict(config.classifier.config.to_dict())
    cls.data.dataset_dir = cls.data.dataset_dir or ae_config.data.dataset_dir
    cls.autoencoder_workdir = str(point_dir)
    digest = hashlib.sha256(cls.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:8]
    return cls, pathlib.Path(point_dir) / f"classifier_{digest}"


def train_classifier(point_dir, ae_config, config):
    """Trains and scores the classifier on the point's reconstructions: FL-AUC, VL-F1, its epsilon."""
    cls, workdir = classifier_config(point_dir, ae_config, config)
    metrics = classifier_trainer.train_and_evaluate(cls, workdir)
    report = anomaly_report.write_report(workdir)
    return {
        "fl_auc": report["fl_auc"],
        "fl_auc_undefined": report["fl_auc_undefined"],
        "vl_f1": report["vl_f1"],
        "classifier_workdir": str(workdir),
        "classifier_epsilon_pld": metrics.get("epsilon_pld"),
        # Whoever holds both models holds both mechanisms over the same frames: their composition.
        "combined_epsilon_pld": (metrics.get("combined_privacy") or {}).get("epsilon_pld"),
        "combined_privacy_note": (metrics.get("combined_privacy") or {}).get("why"),
    }


# --- One point, start to DONE -----------------------------------------------------------------


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): delete it to redo what wrote it") from e


def _write_json(path, value):
    tmp = pathlib.Path(f"{path}.partial")
    tmp.write_text(json.dumps(privacy_report.json_safe(value), indent=2, default=str))
    tmp.replace(path)  # atomic: a killed run never leaves half a file


def eval_settings(config):
    return {**privacy_settings(config), "classifier": config.classifier.to_dict()}


def is_finished(point_dir, config):
    """DONE, and evaluated with the current privacy / classifier settings."""
    point_dir = pathlib.Path(point_dir)
    if not (point_dir / DONE).is_file() or not (point_dir / RESULT).is_file():
        return False
    return _read_json(point_dir / RESULT).get("eval_settings") == privacy_report.json_safe(
        eval_settings(config)
    )


class StalePointError(ValueError):
    """A point directory trained with another autoencoder config than the sweep's current one."""


def check_point_config(point, point_dir):
    """Refuses a workdir whose stored autoencoder config for this point differs from the current one.

    A field the stored config lacks (added to ``configs/autoencoder.py`` since)
    is not a difference while it is off (empty, zero, false): that run had no
    such knob, which is the same as the knob off. Set, it is a difference: a
    point trained from random weights must not pass for one started from
    ``init_from``.
    """
    path = pathlib.Path(point_dir) / POINT_CONFIG
    if not path.is_file():
        return
    stored = _read_json(path)["autoencoder"]
    diff = sorted(_diff(stored, json.loads(point.config.to_json_best_effort(sort_keys=True))))
    if diff:
        raise StalePointError(
            f"{point_dir} was trained with another autoencoder config (differs at {', '.join(diff)}); "
            "use a new --workdir or delete that point's directory"
        )


def _diff(stored, current, prefix=""):
    """Dotted paths where ``stored`` has a value that ``current`` does not, or ``current`` sets a
    field ``stored`` lacks."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(stored):
            yield from _diff(stored[key], current.get(key), f"{prefix}{key}.")
        for key in sorted(set(current) - set(stored)):
            if isinstance(current[key], dict):  # a new section: each of its fields on its own
                yield from _diff({}, current[key], f"{prefix}{key}.")
            elif current[key] not in (None, "", 0, False, [], ()):
                yield f"{prefix}{key}"
    elif stored != current:
        yield prefix.rstrip(".")


def point_rows(point, plan, metrics, privacy, classifier):
    """The point's result rows: one without latent LDP, one per LDP level."""
    training = {
        "point": point.name,
        "optimizer": point.optimizer,
        "noise_multiplier": point.noise_multiplier,
        "status": "done",
        "private": metrics.get("private"),
        "unit_of_privacy": metrics.get("unit_of_privacy"),
        "epsilon_rdp": metrics.get("epsilon_rdp"),
        "epsilon_pld": metrics.get("epsilon_pld"),
        "delta": metrics.get("delta"),
        "planned_steps": plan["planned_steps"],
        "steps": metrics.get("steps"),
        "planned_epsilon_pld": plan.get("epsilon_pld"),
        "reid_top1_clear_crops": privacy["reference"]["reid_top1_clear_crops"],
    }
    rows = []
    for level in privacy["levels"]:
        row = {**training, **level, **(classifier if level["latent_ldp_noise"] is None else {})}
        row["accountant"] = sweep_report.accountant_label(row)
        rows.append(row)
    return rows


def execute_point(point, config, point_dir, plan, *, log=print):
    """Trains, measures and records one point; never raises for a failure of the point itself.

    Returns:
      ``{"status": "done", "rows", "seconds", ...}`` or ``{"status": "failed", "error", ...}``.
    """
    point_dir = pathlib.Path(point_dir)
    point_dir.mkdir(parents=True, exist_ok=True)
    for stale in (ERROR, RESULT, DONE):
        (point_dir / stale).unlink(missing_ok=True)
    start = time.perf_counter()
    stage, times = "autoencoder", {}
    try:
        check_point_config(point, point_dir)
        _write_json(
            point_dir / POINT_CONFIG,
            {"autoencoder": json.loads(point.config.to_json_best_effort(sort_keys=True))},
        )
        if (point_dir / "export" / "spec.json").is_file() and (point_dir / "metrics.json").is_file():
            metrics = _read_json(point_dir / "metrics.json")  # trained by an earlier run
        else:
            metrics = ae_trainer.train_and_evaluate(point.config, point_dir)
        times["train_seconds"] = time.perf_counter() - start

        stage = "privacy"
        t = time.perf_counter()
        settings = privacy_report.json_safe(privacy_settings(config))
        stored = _read_json(point_dir / PRIVACY) if (point_dir / PRIVACY).is_file() else None
        if stored and stored.get("settings") == settings and (point_dir / "recon_samples.npz").is_file():
            privacy = stored
        else:
            privacy = {**evaluate_privacy(point_dir, point.config, config, metrics), "settings": settings}
            _write_json(point_dir / PRIVACY, privacy)
        times["privacy_seconds"] = time.perf_counter() - t

        stage = "classifier"
        t = time.perf_counter()
        classifier = train_classifier(point_dir, point.config, config) if config.classifier.enabled else {}
        times["classifier_seconds"] = time.perf_counter() - t

        stage = "report"
        result = {
            "status": "done",
            "point": point.name,
            "rows": point_rows(point, plan, metrics, privacy, classifier),
            "seconds": time.perf_counter() - start,
            **times,
            "eval_settings": eval_settings(config),
        }
        _write_json(point_dir / RESULT, result)
        (point_dir / DONE).write_text(f"finished {time.strftime('%Y-%m-%d %H:%M:%S')}\n")  # last
        return result
    except Exception as e:  # the point fails, the sweep goes on
        error = {
            "status": "failed",
            "point": point.name,
            "stage": stage,
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - start,
            **times,
        }
        _write_json(point_dir / ERROR, error)
        log(f"point {point.name} failed at {stage}: {error['error']} (traceback in {point_dir / ERROR})")
        return error


# --- Workers ----------------------------------------------------------------------------------


def _probe_devices(connection):
    """Sends (platform, local device count) from a throwaway process: this one never grabs a GPU."""
    connection.send((jax.default_backend(), jax.local_device_count()))
    connection.close()


def probe_devices(timeout=300):
    """``(platform, device count)`` as a spawned process sees them, or a clear error.

    A plain Process, not a Pool: a Pool respawns a worker that dies at start
    (e.g. a calling script without ``if __name__ == "__main__"``) forever.
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_probe_devices, args=(send,), name="sweep-probe-devices")
    proc.start()
    send.close()
    try:
        if receive.poll(timeout):
            return receive.recv()
    except EOFError:
        pass
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    raise RuntimeError(
        f"a spawned process could not report its JAX devices (exit code {proc.exitcode}); worker "
        "processes need the calling script to guard its entry point with if __name__ == '__main__', "
        "or run with parallel=1"
    )


def accelerator_plugins():
    """Installed JAX accelerator plugins (jax-cuda*-plugin, jax-rocm*-plugin, libtpu)."""
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in importlib.metadata.distributions()}
    return sorted(n for n in names if n.startswith(("jax-cuda", "jax-rocm", "libtpu")))


def worker_slots(parallel):
    """How points run: ``{"mode", "slots", "platform", "devices"}``; ``slots`` is None (in-process)
    or one environment per worker process (e.g. ``{"CUDA_VISIBLE_DEVICES": "1"}``).

    Args:
      parallel: None: one process per GPU when there are several, else in-process;
        1: in-process; N > 1: N processes (pinned round-robin to GPUs if any).
    """
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if parallel == 1:
        return {"mode": "in-process, one point at a time", "slots": None, "platform": None}
    if accelerator_plugins() and os.environ.get("JAX_PLATFORMS", "").lower() != "cpu":
        platform, count = probe_devices()
    else:  # a CPU-only JAX: no need to pay a process start and a JAX import to learn that
        platform, count = "cpu", 1
    gpu = platform in ("gpu", "cuda", "rocm")
    if parallel is None and not (gpu and count > 1):
        return {
            "mode": "in-process, one point at a time",
            "slots": None,
            "platform": platform,
            "devices": count,
        }
    workers = parallel or count
    if not gpu:
        return {
            "mode": f"{workers} CPU processes",
            "slots": [{}] * workers,
            "platform": platform,
            "devices": count,
        }
    variable = "HIP_VISIBLE_DEVICES" if platform == "rocm" else "CUDA_VISIBLE_DEVICES"
    visible = os.environ.get(variable)
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    per_device = math.ceil(workers / count)
    slots = []
    for w in range(workers):
        env = {variable: ids[w % count]}
        if per_device > 1:  # several processes on one GPU: split its memory instead of preallocating 75% each
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / per_device:.3f}"
        slots.append(env)
    return {"mode": f"{workers} processes pinned to {count} GPUs", "slots": slots, "platform": platform,
            "devices": count}  # fmt: skip


def _worker_main(point, config, point_dir, plan, env, jax_settings):
    """A spawned worker: pins its device, logs to the point's log.txt, runs one point."""
    os.environ.update(env)  # before JAX's first backend use, which reads these
    point_dir = pathlib.Path(point_dir)
    point_dir.mkdir(parents=True, exist_ok=True)
    log = open(point_dir / "log.txt", "a", buffering=1)  # open for the life of the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr = log, log
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {point.name}: worker pid {os.getpid()}, environment {env}")
    for name, value in jax_settings.items():  # the parent's persistent compilation cache
        jax.config.update(name, value)
    execute_point(point, config, point_dir, plan)


def _run_in_process(pending, config, workdir, plans, log):
    walls = {}
    for i, point in enumerate(pending):
        log(f"[{i + 1}/{len(pending)}] {point.name}: training and measuring")
        t = time.perf_counter()
        result = execute_point(point, config, workdir / "points" / point.name, plans[point.name], log=log)
        walls[point.name] = {"wall_seconds": time.perf_counter() - t, "worker": 0}
        log(f"[{i + 1}/{len(pending)}] {point.name}: {result['status']} in {result['seconds']:.1f} s")
    return walls


def _run_in_processes(pending, config, workdir, plans, slots, log):
    """Runs points in spawned processes, one per slot at a time; a crashed process is a failed point."""
    ctx = multiprocessing.get_context("spawn")
    jax_settings = {}
    if jax.config.jax_compilation_cache_dir:  # workers share it: a program compiled once is reused
        jax_settings = {name: getattr(jax.config, name) for name in CACHE_SETTINGS}
    queue, free, running, walls = list(pending), list(range(len(slots))), {}, {}
    try:
        while queue or running:
            while queue and free:
                slot, point = free.pop(0), queue.pop(0)
                point_dir = workdir / "points" / point.name
                args = (point, config, str(point_dir), plans[point.name], slots[slot], jax_settings)
                proc = ctx.Process(target=_worker_main, args=args, name=f"sweep-{point.name}")
                proc.start()
                running[proc.sentinel] = (proc, point, slot, time.perf_counter())
                log(f"{point.name}: worker {slot} {slots[slot] or ''}, log in {point_dir / 'log.txt'}")
            for sentinel in multiprocessing.connection.wait(list(running)):
                proc, point, slot, started = running.pop(sentinel)
                proc.join()
                free.append(slot)
                point_dir = workdir / "points" / point.name
                walls[point.name] = {"wall_seconds": time.perf_counter() - started, "worker": slot}
                if not (point_dir / DONE).is_file() and not (point_dir / ERROR).is_file():
                    _write_json(point_dir / ERROR, {
                        "status": "failed", "point": point.name, "stage": "worker process",
                        "error": f"worker process exited with code {proc.exitcode} before recording a "
                        f"result (killed, out of memory, or crashed; see {point_dir / 'log.txt'})",
                    })  # fmt: skip
                status = "done" if (point_dir / DONE).is_file() else "failed"
                log(f"{point.name}: {status} after {walls[point.name]['wall_seconds']:.1f} s")
    except BaseException:
        for proc, *_ in running.values():  # only the processes this sweep started
            proc.terminate()
            proc.join()
        raise
    return walls


# --- The sweep --------------------------------------------------------------------------------


def run_sweep(config, workdir, *, parallel=None, log=print):
    """Plans, prints epsilons, runs the unfinished points, writes the reports. See the module docstring.

    Args:
      config: ``configs/sweep_noise.py``.
      workdir: the sweep's directory (points under ``workdir/points``).
      parallel: worker processes (``worker_slots``); None chooses.
      log: where progress lines and the epsilon table go.

    Returns:
      ``{"rows", "plan", "timing"}`` as written to the reports.
    """
    sweep_start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    points = grid(config)
    dataset_dir = config.autoencoder.data.dataset_dir
    if not dataset_dir:
        raise ValueError(
            "set --config.autoencoder.data.dataset_dir to a prepared dataset (launch.prepare_data)"
        )
    if not pathlib.Path(dataset_dir).is_dir():
        raise FileNotFoundError(
            f"dataset_dir {dataset_dir} does not exist: prepare it with launch.prepare_data"
        )

    # Epsilon of every point before any training.
    plans, plan_errors, previous = {}, {}, {}
    if (workdir / "epsilon_plan.json").is_file():
        previous = {p["point"]: p for p in _read_json(workdir / "epsilon_plan.json")["points"]}
    for point in points:
        try:
            plans[point.name] = plan_point(point, previous=previous.get(point.name))
        except Exception as e:  # a point that cannot be accounted is not trained
            plan_errors[point.name] = f"{type(e).__name__}: {e}"
    ldp = ldp_plan(config)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = {"points": list(plans.values()), "errors": plan_errors, "latent_ldp": ldp}
    _write_json(workdir / "epsilon_plan.json", plan)
    table = sweep_report.plan_table(plan)
    (workdir / "epsilon_plan.md").write_text(table)
    log(table)
    (workdir / "sweep_config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))

    for point in points:  # refuse a mixed workdir before anything runs
        check_point_config(point, workdir / "points" / point.name)
    for name, error in plan_errors.items():
        point_dir = workdir / "points" / name
        point_dir.mkdir(parents=True, exist_ok=True)
        (point_dir / DONE).unlink(missing_ok=True)
        _write_json(point_dir / ERROR, {"status": "failed", "point": name, "stage": "plan", "error": error})
    finished = [
        p.name for p in points if p.name in plans and is_finished(workdir / "points" / p.name, config)
    ]
    pending = [p for p in points if p.name in plans and p.name not in finished]
    if finished:
        log(f"skipping {len(finished)} finished point(s): {', '.join(finished)}")
    plan_seconds = time.perf_counter() - sweep_start

    # The points.
    workers = worker_slots(parallel) if pending else {"mode": "nothing to run", "slots": None}
    log(f"{len(pending)} point(s) to run: {workers['mode']}")
    points_start = time.perf_counter()
    try:
        if workers["slots"] is None:
            walls = _run_in_process(pending, config, workdir, plans, log)
        else:
            walls = _run_in_processes(pending, config, workdir, plans, workers["slots"], log)
    finally:  # also when interrupted: what finished is reported
        points_wall = time.perf_counter() - points_start
        rows = collect_rows(points, workdir)
        sweep_report.write_results(rows, workdir, plan=plan)
    report_start = time.perf_counter()
    sweep_report.write_plots(rows, workdir)
    timing = sweep_timing(
        pending, workdir, walls, workers=workers, finished=finished, plan_seconds=plan_seconds,
        points_wall=points_wall, report_seconds=time.perf_counter() - report_start,
        sweep_seconds=time.perf_counter() - sweep_start,
    )  # fmt: skip
    with open(workdir / "timing_history.jsonl", "a") as f:
        f.write(json.dumps(privacy_report.json_safe(timing)) + "\n")
    if pending or not (workdir / "timing.json").is_file():  # a rerun with nothing to do keeps the last
        _write_json(workdir / "timing.json", timing)
    sweep_report.write_results(rows, workdir, plan=plan, timing=_read_json(workdir / "timing.json"))
    log(
        f"sweep: {timing['sweep_wall_seconds']:.1f} s wall; points {timing['points_wall_seconds']:.1f} s "
        f"against {timing['one_by_one_seconds']:.1f} s one by one; results in {workdir / 'results.md'}"
    )
    return {"rows": rows, "plan": plan, "timing": timing}


def collect_rows(points, workdir):
    """Every point's rows: its results when DONE, else a failed or not-run row."""
    rows = []
    for point in points:
        point_dir = pathlib.Path(workdir) / "points" / point.name
        base = {
            "point": point.name,
            "optimizer": point.optimizer,
            "noise_multiplier": point.noise_multiplier,
            "latent_ldp_noise": None,
        }
        if (point_dir / DONE).is_file() and (point_dir / RESULT).is_file():
            rows += _read_json(point_dir / RESULT)["rows"]
        elif (point_dir / ERROR).is_file():
            error = _read_json(point_dir / ERROR)
            rows.append({**base, "status": "failed", "error": f"{error['stage']}: {error['error']}"})
        else:
            rows.append({**base, "status": "not run"})
    return rows


def sweep_timing(pending, workdir, walls, *, workers, finished, plan_seconds, points_wall, report_seconds,
                 sweep_seconds):  # fmt: skip
    """The sweep's wall time against the sum of the points' own times (the one by one baseline)."""
    per_point = {}
    for point in pending:
        point_dir = pathlib.Path(workdir) / "points" / point.name
        source = point_dir / RESULT if (point_dir / DONE).is_file() else point_dir / ERROR
        record = _read_json(source) if source.is_file() else {}
        per_point[point.name] = {
            "status": record.get("status", "not run"),
            **{
                k: record[k]
                for k in ("seconds", "train_seconds", "privacy_seconds", "classifier_seconds")
                if k in record
            },  # fmt: skip
            **walls.get(point.name, {}),
        }
    one_by_one = sum(p.get("seconds", p.get("wall_seconds", 0.0)) for p in per_point.values())
    return {
        "sweep_wall_seconds": sweep_seconds,
        "plan_seconds": plan_seconds,
        "points_wall_seconds": points_wall,
        "report_seconds": report_seconds,
        "one_by_one_seconds": one_by_one,
        "speedup_vs_one_by_one": one_by_one / points_wall if pending and points_wall > 0 else None,
        "mode": workers["mode"],
        "workers": len(workers["slots"]) if workers.get("slots") else 1,
        "worker_env": workers.get("slots"),
        "platform": workers.get("platform"),
        "devices": workers.get("devices"),
        "points_run": len(pending),
        "points_skipped_finished": finished,
        "points": per_point,
        "note": "one_by_one_seconds sums each point's own time (training, privacy, classifier) in this "
        "run; points running side by side on shared cores are each slower than alone, so this sum "
        "overstates a sequential run (compare with a --parallel=1 run). Worker processes also pay "
        "their start and JAX import, counted in points_wall_seconds, not in the points' own times.",
    }
