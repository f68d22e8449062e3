"""One point, start to DONE: train (or reuse) its autoencoder, measure privacy, optionally a classifier.

``execute_point`` never raises for a failure of the point itself: the failing
stage and its traceback go to ``error.json`` and the sweep goes on. A stage
whose outputs exist (the export and metrics.json, privacy.json with the same
settings) is not redone.
"""

import hashlib
import json
import pathlib
import time
import traceback

import ml_collections
import numpy as np

from ppvad_jax.data import autoencoder_data
from ppvad_jax.evaluation import anomaly_report, autoencoder_privacy, face_attacks, sweep_report
from ppvad_jax.pipelines import frame_privacy
from ppvad_jax.pipelines.sweep import grid, store
from ppvad_jax.privacy import accounting
from ppvad_jax.training import autoencoder as ae_trainer
from ppvad_jax.training import classifier as classifier_trainer

# --- Privacy of one point ---------------------------------------------------------------------


def evaluate_privacy(point_dir, ae_config, config, ae_metrics):
    """``autoencoder_privacy.evaluate`` on the point's export and splits; saves the grid samples."""
    settings = ml_collections.ConfigDict(config.privacy.to_dict())
    settings.face_backends = tuple(grid.names(settings.face_backends))
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


def classifier_config(point_dir, ae_config, config, redaction=""):
    """The point's classifier config and its workdir (named by a hash of the config: no stale resume)."""
    cls = ml_collections.ConfigDict(config.classifier.config.to_dict())
    cls.data.dataset_dir = cls.data.dataset_dir or ae_config.data.dataset_dir
    cls.autoencoder_workdir = str(point_dir)
    cls.camera_redaction = redaction or cls.get("camera_redaction", "")
    digest = hashlib.sha256(cls.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:8]
    return cls, pathlib.Path(point_dir) / f"classifier_{digest}"


def train_classifier(point_dir, ae_config, config, redaction=""):
    """Trains and scores the classifier on the point's reconstructions: FL-AUC, VL-F1, its epsilon."""
    cls, workdir = classifier_config(point_dir, ae_config, config, redaction)
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


# --- The mechanism axis: frame privacy and one classifier per camera mechanism ----------------


def mechanism_fields(row):
    """The sweep row's columns from one ``frame_privacy`` row."""
    return {
        "mechanism": row["mechanism"],
        "strong_face_detection_rate": row["detection_rate"],
        "adaptive_reid_top1": row["adaptive"]["top1"],
        "adaptive_reid_top1_ci95": row["adaptive"]["top1_ci95"],
        "naive_reid_top1": row["naive"]["top1"],
        "linking_top1": row["linking"]["top1"],
        "real_faces_chance_top1": row["chance_top1"],
    }


def measure_mechanisms(point_dir, config):
    """``{mechanism: sweep columns}``, from the point's frame_privacy.json when its settings match."""
    fp = config.frame_privacy
    out = pathlib.Path(point_dir) / "frame_privacy"
    settings = accounting.json_safe(fp.to_dict())
    path = out / "frame_privacy.json"
    stored = store.read_json(path) if path.is_file() else None
    if not (stored and stored.get("settings") == settings):
        persons = face_attacks.people(limit=fp.people or None)
        stored = frame_privacy.run(
            ae_workdir=point_dir, mechanisms=list(fp.mechanisms), views=fp.views,
            gallery_views=fp.gallery_views, output_dir=out, persons=persons,
        )  # fmt: skip
        store.write_json(path, {**accounting.json_safe(stored), "settings": settings})
    return {r["mechanism"]: mechanism_fields(r) for r in stored["rows"]}


# --- The point's rows -------------------------------------------------------------------------


def point_rows(point, plan, metrics, privacy, classifier, mechanisms=None):
    """The point's result rows: one without latent LDP (one per camera mechanism when
    ``mechanisms`` holds them: ``{name: (frame-privacy columns, classifier columns)}``), one per
    LDP level."""
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
        if level["latent_ldp_noise"] is None and mechanisms:
            variants = [{**fields, **cls} for fields, cls in mechanisms.values()]
        else:
            variants = [classifier if level["latent_ldp_noise"] is None else {}]
        for extra in variants:
            row = {**training, **level, **extra}
            row["accountant"] = sweep_report.accountant_label(row)
            rows.append(row)
    return rows


# --- One point, start to DONE -----------------------------------------------------------------


def _train(point, point_dir):
    """The point's autoencoder metrics: trained now, or read back from an earlier run's export."""
    store.check_point_config(point, point_dir)
    store.write_json(
        point_dir / store.POINT_CONFIG,
        {"autoencoder": json.loads(point.config.to_json_best_effort(sort_keys=True))},
    )
    if (point_dir / "export" / "spec.json").is_file() and (point_dir / "metrics.json").is_file():
        return store.read_json(point_dir / "metrics.json")  # trained by an earlier run
    return ae_trainer.train_and_evaluate(point.config, point_dir)


def _privacy(point, point_dir, config, metrics):
    """The point's privacy.json: reused when measured with the same settings, else measured now."""
    settings = accounting.json_safe(store.privacy_settings(config))
    path = point_dir / store.PRIVACY
    stored = store.read_json(path) if path.is_file() else None
    if stored and stored.get("settings") == settings and (point_dir / "recon_samples.npz").is_file():
        return stored
    privacy = {**evaluate_privacy(point_dir, point.config, config, metrics), "settings": settings}
    store.write_json(path, privacy)
    return privacy


def _classifiers(point_dir, point, config, measured):
    """The plain classifier's columns, and ``{mechanism: (frame privacy, classifier)}`` columns."""
    enabled = config.classifier.enabled
    mechanisms = {}
    for name, fields in measured.items():
        m = frame_privacy.parse(name)
        cls = (
            train_classifier(point_dir, point.config, config, m.redaction_spec)
            if enabled and m.trains_classifier
            else {}
        )
        mechanisms[name] = (fields, cls)
    plain = next((c for n, (_, c) in mechanisms.items() if n == "ae"), None)
    if plain is None:
        plain = train_classifier(point_dir, point.config, config) if enabled else {}
    return plain, mechanisms


def _timed(times, key, fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    times[key] = time.perf_counter() - start
    return value


def execute_point(point, config, point_dir, plan, *, log=print):
    """Trains, measures and records one point; never raises for a failure of the point itself.

    Returns:
      ``{"status": "done", "rows", "seconds", ...}`` or ``{"status": "failed", "error", ...}``.
    """
    point_dir = pathlib.Path(point_dir)
    point_dir.mkdir(parents=True, exist_ok=True)
    for stale in (store.ERROR, store.RESULT, store.DONE):
        (point_dir / stale).unlink(missing_ok=True)
    start = time.perf_counter()
    stage, times = "autoencoder", {}
    try:
        metrics = _timed(times, "train_seconds", _train, point, point_dir)
        stage = "privacy"
        privacy = _timed(times, "privacy_seconds", _privacy, point, point_dir, config, metrics)
        stage = "frame privacy"
        measured = {}
        if config.frame_privacy.mechanisms:
            measured = _timed(times, "frame_privacy_seconds", measure_mechanisms, point_dir, config)
        stage = "classifier"
        classifier, mechanisms = _timed(
            times, "classifier_seconds", _classifiers, point_dir, point, config, measured
        )
        stage = "report"
        result = {
            "status": "done",
            "point": point.name,
            "rows": point_rows(point, plan, metrics, privacy, classifier, mechanisms),
            "seconds": time.perf_counter() - start,
            **times,
            "eval_settings": store.eval_settings(config),
        }
        store.write_json(point_dir / store.RESULT, result)
        (point_dir / store.DONE).write_text(f"finished {time.strftime('%Y-%m-%d %H:%M:%S')}\n")  # last
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
        store.write_json(point_dir / store.ERROR, error)
        where = point_dir / store.ERROR
        log(f"point {point.name} failed at {stage}: {error['error']} (traceback in {where})")
        return error
