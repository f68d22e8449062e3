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
"""

import pathlib
import statistics
import time

from ppvad_jax.evaluation import anomaly_report
from ppvad_jax.pipelines.demo import classifier as demo_classifier
from ppvad_jax.pipelines.demo import outputs, report
from ppvad_jax.pipelines.demo import run as demo_run
from ppvad_jax.training import classifier

_METRICS = ("fl_auc", "within_anomalous_auc", "vl_f1")


def _world_config(config, workdir, world_seed):
    """The demo config of one world: its seed, no sweep, no classifier of its own."""
    world = outputs.fresh(config)
    world.seed = world_seed
    world.workdir = str(workdir)
    world.sweep_noise_multipliers = ()
    world.classifier = False
    return world


def _head_run(world, workdir, stages, head_seed):
    """One head seed on one world's cached inputs and features: the demo's numbers, as a row."""
    ae_dir = stages.autoencoder.workdir if stages.autoencoder else None
    cls = demo_classifier.classifier_config(world, stages.summary["dataset_dir"], ae_dir)
    cls.seed = head_seed
    cls.inputs_dir, cls.features_dir = str(workdir / "inputs"), str(workdir / "features")
    cls_dir = workdir / f"head{head_seed}"
    start = time.perf_counter()
    classifier.train_and_evaluate(cls, cls_dir)
    r = anomaly_report.write_report(cls_dir)
    baseline, comparison = demo_classifier.motion_baseline(cls_dir, workdir / "inputs")
    row = {"world_seed": world.seed, "head_seed": head_seed, "seconds": time.perf_counter() - start}
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


def run(config, *, workdir, world_seeds, head_seeds):
    """Every (world seed, head seed) run of the demo's classifier against motion energy."""
    rows = []
    for world_seed in world_seeds:
        world_dir = pathlib.Path(workdir) / f"world{world_seed}"
        world = _world_config(config, world_dir, world_seed)
        stages = demo_run.run_stages(world, world_dir)
        rows += [_head_run(world, world_dir, stages, seed) for seed in head_seeds]
    return {"rows": rows, "summary": summarize(rows)}
