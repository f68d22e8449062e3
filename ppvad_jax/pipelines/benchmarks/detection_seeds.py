"""Does the classifier beat motion energy on average, or on one lucky draw? World seeds x head seeds.

For each world seed the demo's data stages and autoencoder run once (``configs/demo.py``
with that ``seed``; the sweep and the demo's own classifier off), the classifier's inputs
and backbone features are cached once, and then the classifier's head is trained once per
head seed (``config.seed``: head initialisation, dropout, batch order) on those caches. Every
run is scored as the demo scores it: FL-AUC, the AUC within anomalous videos and VL-F1 of the
classifier and of motion energy calibrated on validation (``evaluation.motion_energy``),
and the paired video bootstrap of the FL-AUC difference. The JSON gives every run, then the
mean and standard deviation over all runs and per world, and how many runs were a clear win
(interval above 0 and a higher VL-F1).

``redactions`` (e.g. ``("", "fill@0.8")``): each head seed also runs with the camera's face
redaction (``models.face_redaction``) before the autoencoder, on its own inputs' cache; each
redacted run is compared with the unredacted run of the same world and head seed (the paired
video bootstrap of the FL-AUC difference, ``redaction_cost``): what identity removal costs
detection.
"""

import pathlib
import statistics
import time

import numpy as np

from ppvad_jax.evaluation import anomaly_report, auc_comparison
from ppvad_jax.pipelines.demo import classifier as demo_classifier
from ppvad_jax.pipelines.demo import outputs, report
from ppvad_jax.pipelines.demo import run as demo_run
from ppvad_jax.training import classifier, classifier_inputs

_METRICS = ("fl_auc", "within_anomalous_auc", "vl_f1")


def _world_config(config, workdir, world_seed):
    """The demo config of one world: its seed, no sweep, no classifier of its own."""
    world = outputs.fresh(config)
    world.seed = world_seed
    world.workdir = str(workdir)
    world.sweep_noise_multipliers = ()
    world.classifier = False
    world.frontier = False
    return world


def _tag(redaction):
    return f"_redact_{redaction.replace('@', '_')}" if redaction else ""


def _head_run(world, workdir, stages, head_seed, redaction=""):
    """One head seed on one world's cached inputs and features: the demo's numbers, as a row."""
    ae_dir = stages.autoencoder.workdir if stages.autoencoder else None
    cls = demo_classifier.classifier_config(world, stages.summary["dataset_dir"], ae_dir)
    cls.seed, cls.camera_redaction = head_seed, redaction
    inputs = workdir / f"inputs{_tag(redaction)}"
    cls.inputs_dir, cls.features_dir = str(inputs), str(workdir / f"features{_tag(redaction)}")
    cls_dir = workdir / f"head{head_seed}{_tag(redaction)}"
    start = time.perf_counter()
    classifier.train_and_evaluate(cls, cls_dir)
    r = anomaly_report.write_report(cls_dir)
    baseline, comparison = demo_classifier.motion_baseline(cls_dir, inputs)
    row = {"world_seed": world.seed, "head_seed": head_seed, "camera_redaction": redaction,
           "cls_dir": str(cls_dir), "seconds": time.perf_counter() - start}  # fmt: skip
    row.update({k: r.get(k) for k in _METRICS})
    row.update({f"motion_{k}": (baseline or {}).get(k) for k in _METRICS})
    row["fl_auc_margin"] = None if comparison is None else comparison["difference"]
    row["margin_interval"] = None if comparison is None else [comparison["low"], comparison["high"]]
    row["clear_win"] = "clearly beats" in report.verdict_line(r, baseline, comparison)
    row["test_videos"] = r["test_videos"]
    return row


def _spread(rows, key):
    values = [r[key] for r in rows if r[key] is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}  # fmt: skip


def summarize(rows):
    """Mean, standard deviation and range of each number over the runs; clear wins counted."""
    keys = [*_METRICS, *(f"motion_{k}" for k in _METRICS), "fl_auc_margin"]
    return {
        "all": {k: _spread(rows, k) for k in keys},
        "per_world": {
            seed: {k: _spread([r for r in rows if r["world_seed"] == seed], k) for k in keys}
            for seed in sorted({r["world_seed"] for r in rows})
        },
        "clear_wins": sum(r["clear_win"] for r in rows),
        "runs": len(rows),
    }


def redaction_cost(clear_dir, redacted_dir, hard):
    """FL-AUC of the redacted run minus the unredacted one, paired over the same test videos.

    ``hard``: [N] bool, the test frames that are hard anomalies (the same frames in both runs).
    """
    with (
        np.load(pathlib.Path(clear_dir) / "predictions.npz") as a,
        np.load(pathlib.Path(redacted_dir) / "predictions.npz") as b,
    ):
        if not np.array_equal(a["video_index"], b["video_index"]):
            raise ValueError(f"{clear_dir} and {redacted_dir} scored different test frames")
        diff = auc_comparison.paired_video_bootstrap(
            hard, b["confidence"], a["confidence"], a["video_index"], replicates=2000
        )
    return diff.as_dict()


def run(config, *, workdir, world_seeds, head_seeds, redactions=("",)):
    """Every (world seed, redaction, head seed) run of the demo's classifier against motion energy."""
    rows = []
    for world_seed in world_seeds:
        world_dir = pathlib.Path(workdir) / f"world{world_seed}"
        world = _world_config(config, world_dir, world_seed)
        stages = demo_run.run_stages(world, world_dir)
        for redaction in redactions:
            rows += [_head_run(world, world_dir, stages, seed, redaction) for seed in head_seeds]
    by_redaction = {
        r or "none": summarize([row for row in rows if row["camera_redaction"] == r]) for r in redactions
    }
    summary = by_redaction.get("none") or summarize(rows)
    costs = _costs(rows)
    return {"rows": rows, "summary": summary, "summary_by_redaction": by_redaction, "redaction_cost": costs}


def _costs(rows):
    """``redaction_cost`` of every redacted run that has an unredacted twin (same world and head)."""
    clear = {(r["world_seed"], r["head_seed"]): r for r in rows if not r["camera_redaction"]}
    out = []
    for r in rows:
        twin = clear.get((r["world_seed"], r["head_seed"]))
        if r["camera_redaction"] and twin is not None:
            test = classifier_inputs.load_split(pathlib.Path(twin["cls_dir"]).parent / "inputs", "test")
            cost = redaction_cost(twin["cls_dir"], r["cls_dir"], test["labels"] == classifier.HARD)
            out.append({k: r[k] for k in ("world_seed", "head_seed", "camera_redaction")} | cost)
    return out
