"""The whole sweep: plan every point, refuse a mixed workdir, run what is unfinished, report.

See the package docstring (``pipelines.sweep``) for what each step guarantees.
"""

import json
import pathlib
import time

from ppvad_jax.evaluation import sweep_report
from ppvad_jax.pipelines.sweep import grid, plan, store, workers
from ppvad_jax.privacy import accounting


def _check_dataset(config):
    dataset_dir = config.autoencoder.data.dataset_dir
    if not dataset_dir:
        raise ValueError(
            "set --config.autoencoder.data.dataset_dir to a prepared dataset (launch.prepare_data)"
        )
    if not pathlib.Path(dataset_dir).is_dir():
        raise FileNotFoundError(
            f"dataset_dir {dataset_dir} does not exist: prepare it with launch.prepare_data"
        )


def _pending(points, plans, plan_errors, config, workdir, log):
    """Refuses a mixed workdir, records plan failures; returns (pending points, finished names)."""
    for point in points:  # refuse a mixed workdir before anything runs
        store.check_point_config(point, store.point_dir(workdir, point.name))
    store.record_plan_failures(plan_errors, workdir)
    planned = [p for p in points if p.name in plans]
    finished = [p.name for p in planned if store.is_finished(store.point_dir(workdir, p.name), config)]
    pending = [p for p in planned if p.name not in finished]
    if finished:
        log(f"skipping {len(finished)} finished point(s): {', '.join(finished)}")
    return pending, finished


def _write_timing(timing, workdir, *, ran_points):
    with open(workdir / "timing_history.jsonl", "a") as f:
        f.write(json.dumps(accounting.json_safe(timing)) + "\n")
    if ran_points or not (workdir / "timing.json").is_file():  # a rerun with nothing to do keeps the last
        store.write_json(workdir / "timing.json", timing)


def _share(pending, shard, report_only, log):
    """The pending points this process runs: none for ``report_only``, this shard's share, or all."""
    if report_only:
        log(f"report only: {len(pending)} unfinished point(s) left as they are")
        return []
    if shard is None:
        return pending
    mine = [p for p in pending if grid.shard_of(p.name, shard[1]) == shard[0]]
    log(f"shard {shard[0]}/{shard[1]}: {len(mine)} of the {len(pending)} unfinished point(s)")
    return mine


def run_sweep(config, workdir, *, parallel=None, log=print, report_only=False):
    """Plans, prints epsilons, runs the unfinished points, writes the reports. See the package docstring.

    Args:
      config: ``configs/sweep_noise.py``; ``config.shard`` ("I/N") runs only that share of the
        points and leaves the reports to a ``report_only`` run (shards run side by side).
      workdir: the sweep's directory (points under ``workdir/points``).
      parallel: worker processes (``workers.worker_slots``); None chooses.
      log: where progress lines and the epsilon table go.
      report_only: run nothing; gather the results and plots of whatever has finished.

    Returns:
      ``{"rows", "plan", "timing"}`` as written to the reports.
    """
    sweep_start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    points = grid.grid(config)
    shard = grid.parse_shard(config.get("shard", ""))
    _check_dataset(config)
    plans, epsilon_plan = plan.plan_sweep(points, config, workdir, log=log)
    store.write_text(workdir / "sweep_config.json", config.to_json_best_effort(indent=2, sort_keys=True))
    pending, finished = _pending(points, plans, epsilon_plan["errors"], config, workdir, log)
    pending = _share(pending, shard, report_only, log)
    plan_seconds = time.perf_counter() - sweep_start

    slots = workers.worker_slots(parallel) if pending else {"mode": "nothing to run", "slots": None}
    log(f"{len(pending)} point(s) to run: {slots['mode']}")
    points_start = time.perf_counter()
    try:
        walls = workers.run_points(pending, config, workdir, plans, slots, log)
    finally:  # also when interrupted: what finished is reported (by the report run, for a shard)
        points_wall = time.perf_counter() - points_start
        rows = store.collect_rows(points, workdir)
        if shard is None:
            sweep_report.write_results(rows, workdir, plan=epsilon_plan)
    if shard is not None:
        return _shard_done(
            pending, workdir, walls, shard, slots, finished, sweep_start, points_wall, rows, log
        )
    report_start = time.perf_counter()
    sweep_report.write_plots(rows, workdir)
    timing = sweep_timing(
        pending, workdir, walls, workers=slots, finished=finished, plan_seconds=plan_seconds,
        points_wall=points_wall, report_seconds=time.perf_counter() - report_start,
        sweep_seconds=time.perf_counter() - sweep_start,
    )  # fmt: skip
    if report_only:
        timing = _gathered(timing, workdir)
    _write_timing(timing, workdir, ran_points=bool(pending) or "shards" in timing)
    timing_json = store.read_json(workdir / "timing.json")
    sweep_report.write_results(rows, workdir, plan=epsilon_plan, timing=timing_json)
    log(
        f"sweep: {timing['sweep_wall_seconds']:.1f} s wall; points {timing['points_wall_seconds']:.1f} s "
        f"against {timing['one_by_one_seconds']:.1f} s one by one; results in {workdir / 'results.md'}"
    )
    return {"rows": rows, "plan": epsilon_plan, "timing": timing}


def _gathered(timing, workdir):
    """The report run's timing with the shards' own (``W/shards/``): points run, their times."""
    files = sorted((workdir / "shards").glob("shard-*-of-*.json"))
    shards = [store.read_json(f) for f in files]
    if not shards:
        return timing
    return dict(
        timing, mode=f"gathered from {len(shards)} shard run(s)", shards=[f.name for f in files],
        points_run=sum(s["points_run"] for s in shards),
        points_wall_seconds=max(s["points_wall_seconds"] for s in shards),
        one_by_one_seconds=sum(s["one_by_one_seconds"] for s in shards),
        points={name: p for s in shards for name, p in s["points"].items()},
    )  # fmt: skip


def _shard_done(pending, workdir, walls, shard, slots, finished, sweep_start, points_wall, rows, log):
    """A shard's own timing in ``W/shards/`` (the report run lists them); no shared report."""
    timing = sweep_timing(
        pending, workdir, walls, workers=slots, finished=finished, plan_seconds=0.0, points_wall=points_wall,
        report_seconds=0.0, sweep_seconds=time.perf_counter() - sweep_start,
    )  # fmt: skip
    out = workdir / "shards" / f"shard-{shard[0]}-of-{shard[1]}.json"
    out.parent.mkdir(exist_ok=True)
    store.write_json(out, timing)
    log(f"shard {shard[0]}/{shard[1]}: {len(pending)} point(s) in {points_wall:.1f} s; "
        f"gather with launch.sweep --report_only ({out})")  # fmt: skip
    return {"rows": rows, "plan": None, "timing": timing}


def _point_times(pending, workdir, walls):
    """Each point run now: its status, its own times and its wall time in the pool."""
    per_point = {}
    for point in pending:
        point_dir = store.point_dir(workdir, point.name)
        source = point_dir / store.RESULT if (point_dir / store.DONE).is_file() else point_dir / store.ERROR
        record = store.read_json(source) if source.is_file() else {}
        per_point[point.name] = {
            "status": record.get("status", "not run"),
            **{
                k: record[k]
                for k in ("seconds", "train_seconds", "privacy_seconds", "classifier_seconds")
                if k in record
            },  # fmt: skip
            **walls.get(point.name, {}),
        }
    return per_point


def sweep_timing(pending, workdir, walls, *, workers, finished, plan_seconds, points_wall, report_seconds,
                 sweep_seconds):  # fmt: skip
    """The sweep's wall time against the sum of the points' own times (the one by one baseline)."""
    per_point = _point_times(pending, workdir, walls)
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
