"""The noise sweep end to end on a tiny prepared dataset: epsilon plan, results, resume, failures, plots."""

import contextlib
import csv
import io
import json
import types

import ml_collections
import numpy as np
import pytest

from configs import sweep_noise
from ppvad_jax.data import public_images
from ppvad_jax.evaluation import sweep_report
from ppvad_jax.models import autoencoder_io
from ppvad_jax.pipelines import frame_privacy
from ppvad_jax.pipelines.sweep import execute, grid, run, store, workers
from ppvad_jax.privacy import accounting, latent_ldp
from tests import autoencoder_support


def tiny_sweep(dataset_dir, *, optimizers=("adam", "dpadam"), noise_multipliers=(0.5, 1.0)):
    """2 optimizers x 2 noise levels (adam once: 3 points), a tiny model at 48x64, 2 steps each.

    adam and dpadam share the compiled init (the same optax.adam state): one compile fewer.
    """
    config = sweep_noise.get_config("runlocal=True")
    config.optimizers = optimizers
    config.noise_multipliers = noise_multipliers
    autoencoder_support.make_tiny(config.autoencoder, dataset_dir, max_steps=2)
    config.privacy.face_frames = 4
    config.privacy.mia_frames = 16
    config.privacy.grid_frames = 2
    # The mechanism axis, small: one mechanism (one row per point), 4 people, 2 sightings each.
    config.frame_privacy.mechanisms = ("redact_fill@0.8+ae",)
    config.frame_privacy.people, config.frame_privacy.views, config.frame_privacy.gallery_views = 4, 2, 1
    return config


def test_grid_adam_once_overrides_and_clear_errors(tmp_path):
    config = sweep_noise.get_config()
    names = [p.name for p in grid.grid(config)]
    assert len(names) == 1 + 3 * 5 and names[0] == "adam" and "dpadagrad_nm0.25" in names
    config.optimizers = ("dpsgd,dpadam",)  # what --config.optimizers=dpsgd,dpadam gives
    config.noise_multipliers = (0.5,)
    points = grid.grid(config)
    assert [p.name for p in points] == ["dpsgd_nm0.5", "dpadam_nm0.5"]
    assert points[1].config.optimizer == "dpadam" and points[1].config.dp.noise_multiplier == 0.5
    assert config.autoencoder.dp.noise_multiplier == 1.0  # the base is not modified
    config.optimizers = ("sgd",)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        grid.grid(config)
    config.optimizers = ("dpsgd",)
    config.noise_multipliers = (-1.0,)
    with pytest.raises(ValueError, match="noise multipliers must be finite and >= 0"):
        grid.grid(config)
    config.noise_multipliers = (1.0,)
    with pytest.raises(ValueError, match="dataset_dir"):
        run.run_sweep(config, tmp_path, parallel=1)
    config.autoencoder.data.dataset_dir = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run.run_sweep(config, tmp_path, parallel=1)


def test_classifier_config_of_a_point(tmp_path):
    """The classifier reads the point's autoencoder; a changed classifier config gets a fresh workdir."""
    config = sweep_noise.get_config("runlocal=True")
    config.autoencoder.data.dataset_dir = "data/d"
    config.classifier.config.phase1.max_epochs = 2  # what --config.classifier.config.phase1... sets
    point = grid.grid(config)[0]
    cls, workdir = execute.classifier_config(tmp_path / "adam", point.config, config)
    assert cls.autoencoder_workdir == str(tmp_path / "adam") and cls.data.dataset_dir == "data/d"
    assert cls.phase1.max_epochs == 2 and cls.input_size == 112  # runlocal's classifier
    assert workdir.parent == tmp_path / "adam" and workdir.name.startswith("classifier_")
    config.classifier.config.phase1.max_epochs = 3
    assert execute.classifier_config(tmp_path / "adam", point.config, config)[1] != workdir


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_device_probe_and_worker_slots():
    """The probe a GPU machine runs before pinning workers (here it finds the CPU)."""
    assert workers.probe_devices() == ("cpu", 1)
    assert workers.worker_slots(1)["slots"] is None
    assert workers.worker_slots(None)["slots"] is None  # CPU only: one point at a time, in-process
    assert workers.worker_slots(3)["slots"] == [{}, {}, {}]
    with pytest.raises(ValueError, match="parallel must be >= 1"):
        workers.worker_slots(0)


def test_a_field_added_since_a_point_ran_differs_only_when_set():
    stored = {"learning_rate": 1e-3, "dp": {"noise_multiplier": 1.0}}
    same = {"learning_rate": 1e-3, "init_from": "", "dp": {"noise_multiplier": 1.0, "unit": None}}
    assert list(store.config_diff(stored, same)) == []
    started = {**same, "init_from": "runs/ae_public", "new": {"a": 0, "b": 2}}
    assert list(store.config_diff(stored, started)) == ["init_from", "new.b"]
    assert list(store.config_diff(stored, {**same, "learning_rate": 3e-3})) == ["learning_rate"]


# --- One sweep, run three times, shared by the tests below -------------------------------------
#
# Building it costs most of this file's time (three tiny trainings, their privacy measurements,
# two spawned workers): the fixture runs it once per module and keeps what each run left, so each
# test below checks one behaviour without paying for a sweep of its own.

POINTS = ("adam", "dpadam_nm0.5", "dpadam_nm1")


def _printed_run(config, workdir, parallel):
    """``run_sweep`` with its default ``log=print``; returns (summary, what it printed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        summary = run.run_sweep(config, workdir, parallel=parallel)
    return summary, out.getvalue()


def _files(workdir):
    """What a run left at the top of the sweep's directory: tables, timing, plot sizes."""
    with open(workdir / "results.csv") as f:
        csv_rows = {r["point"]: r for r in csv.DictReader(f)}
    pngs = ("utility_vs_epsilon.png", "privacy_vs_epsilon.png", "reconstructions.png", "frontier.png")
    return types.SimpleNamespace(
        csv_rows=csv_rows,
        md=(workdir / "results.md").read_text(),
        plan_md=(workdir / "epsilon_plan.md").read_text(),
        timing=json.loads((workdir / "timing.json").read_text()),
        png_sizes={png: (workdir / png).stat().st_size for png in pngs},
        published="".join(f.read_text() for f in workdir.glob("*.*") if f.suffix in (".json", ".md", ".csv")),
    )


def _metrics_stamps(points):
    return {name: (points / name / "metrics.json").stat().st_mtime_ns for name in ("adam", "dpadam_nm1")}


@pytest.fixture(scope="module")
def sweep_runs(dataset_dir, tmp_path_factory):
    """A first run (one point fails on a corrupt metrics.json), a second adding a latent-LDP level in
    two spawned workers, a third that skips what is finished; what each left behind."""
    workdir = tmp_path_factory.mktemp("sweep")
    points = workdir / "points"
    config = tiny_sweep(dataset_dir)
    # One point fails: an earlier run left it a corrupt metrics.json beside its export.
    broken = points / "dpadam_nm0.5"
    (broken / "export").mkdir(parents=True)
    (broken / "export" / "spec.json").write_text("{}")
    (broken / "metrics.json").write_text("{truncated")
    summary, out = _printed_run(config, workdir, 1)
    first = types.SimpleNamespace(
        summary=summary,
        out=out,
        files=_files(workdir),
        plans={p["point"]: p for p in json.loads((workdir / "epsilon_plan.json").read_text())["points"]},
        plan_mtime=(workdir / "epsilon_plan.json").stat().st_mtime,
        metrics=json.loads((points / "dpadam_nm1" / "metrics.json").read_text()),
        metrics_mtime=(points / "dpadam_nm1" / "metrics.json").stat().st_mtime,
        stamps=_metrics_stamps(points),
    )
    # Adding a latent-LDP level re-measures the finished points (one more row each) without
    # retraining, here in two spawned worker processes (the CPU --parallel path).
    config.latent_ldp.noise_multipliers = (4.0,)
    summary = run.run_sweep(config, workdir, parallel=2)
    ldp = types.SimpleNamespace(
        rows=summary["rows"],
        files=_files(workdir),
        stamps=_metrics_stamps(points),
        adam_log_size=(points / "adam" / "log.txt").stat().st_size,
        broken_error=json.loads((broken / "error.json").read_text()),
        error_time=(broken / "error.json").stat().st_mtime_ns,
    )
    # A rerun skips finished points and retries the failed one.
    _, out = _printed_run(config, workdir, 1)
    rerun = types.SimpleNamespace(
        out=out,
        stamps=_metrics_stamps(points),
        error_time=(broken / "error.json").stat().st_mtime_ns,
        timing=json.loads((workdir / "timing.json").read_text()),
    )
    return types.SimpleNamespace(
        workdir=workdir, points=points, config=config, first=first, ldp=ldp, rerun=rerun
    )


@pytest.mark.slow
def test_epsilon_table_is_printed_before_training_and_is_what_the_trainer_reports(sweep_runs):
    first = sweep_runs.first
    assert first.out.index("Epsilon planned for each point") < first.out.index("[1/3] adam")
    assert set(first.plans) == set(POINTS)
    assert first.metrics_mtime > first.plan_mtime
    metrics, plan = first.metrics, first.plans["dpadam_nm1"]
    assert metrics["steps"] == plan["planned_steps"] == 2
    for key in ("epsilon_rdp", "epsilon_pld", "delta", "sampling_rate"):
        assert metrics[key] == plan[key], key
    assert f"| {metrics['epsilon_pld']:.4g} |" in first.out


@pytest.mark.slow
def test_point_epsilon_is_the_bare_subsampled_gaussian_at_the_configs_numbers(sweep_runs):
    """Independent of the plan: ``privacy.accounting`` called here on the config's own q, steps, delta."""
    metrics, plans = sweep_runs.first.metrics, sweep_runs.first.plans
    ae = sweep_runs.config.autoencoder
    q = ae.dp.expected_batch_size / metrics["train_units"]
    delta = ae.dp.delta or accounting.default_delta(metrics["train_units"])
    want = accounting.epsilon_pld(accounting.DpParams(1.0, q, 2, delta))
    assert metrics["epsilon_pld"] == pytest.approx(want, rel=1e-6) and metrics[
        "sampling_rate"
    ] == pytest.approx(q)
    assert (
        plans["adam"]["epsilon_pld"] is None and plans["dpadam_nm0.5"]["epsilon_pld"] > metrics["epsilon_pld"]
    )


@pytest.mark.slow
def test_private_point_draws_a_secret_that_no_sweep_output_repeats(sweep_runs):
    """The private point has its own secret (the non-private one none), absent from what is published."""
    points = sweep_runs.points
    words = json.loads((points / "dpadam_nm1" / "checkpoints" / "dp_secret.json").read_text())["words"]
    assert not (points / "adam" / "checkpoints" / "dp_secret.json").exists()
    published = sweep_runs.first.files.published
    assert published and not any(str(w) in published for w in words if w > 10**6)


@pytest.mark.slow
def test_a_failing_point_is_recorded_with_its_error_and_the_others_finish(sweep_runs):
    rows = sweep_runs.first.files.csv_rows
    assert set(rows) == set(sweep_runs.first.plans)
    assert list(next(iter(rows.values()))) == list(sweep_report.COLUMNS)
    assert rows["dpadam_nm0.5"]["status"] == "failed"
    assert "metrics.json is not valid JSON" in rows["dpadam_nm0.5"]["error"]
    for name in ("adam", "dpadam_nm1"):
        row = rows[name]
        assert row["status"] == "done", row
        assert 0 < float(row["ssim"]) <= 1 and float(row["mse"]) > 0 and float(row["psnr"]) > 0
        assert 0 <= float(row["mia_auc"]) <= 1 and 0 <= float(row["reid_top1"]) <= 1
        assert int(row["faces_original"]) > 0 and row["face_detection_rate"] != ""


@pytest.mark.slow
def test_results_tables_plots_and_timing_of_the_first_run(sweep_runs):
    first = sweep_runs.first
    rows, metrics = first.files.csv_rows, first.metrics
    # The CSV keeps 6 significant digits (sweep_report: format ".6g").
    assert float(rows["dpadam_nm1"]["epsilon_pld"]) == pytest.approx(metrics["epsilon_pld"], rel=1e-5)
    assert rows["adam"]["epsilon_pld"] == "" and "not private" in rows["adam"]["accountant"]
    assert "per frame" in rows["dpadam_nm1"]["accountant"]
    md = first.files.md
    assert all(f"| {name} |" in md for name in first.plans) and "not valid JSON" in md
    headers = (
        "eps PLD",
        "eps RDP",
        "delta",
        "SSIM",
        "PSNR",
        "MSE",
        "face det. rate",
        "re-id top-1",
        "MIA AUC",
    )
    assert all(f" {h} |" in md for h in (*headers, "FL-AUC", "VL-F1", "accountant / unit"))
    for png, size in first.files.png_sizes.items():
        assert size > 5000, png
    # The mechanism axis: the camera's redaction measured by the strong attackers at every point.
    row = rows["dpadam_nm1"]
    assert row["mechanism"] == "redact_fill@0.8+ae" and float(row["real_faces_chance_top1"]) == 0.25
    assert 0 <= float(row["adaptive_reid_top1"]) <= 1 and float(row["strong_face_detection_rate"]) == 0
    assert " adaptive dlib top-1 |" in md
    timing = first.files.timing
    assert timing["points_run"] == 3 and timing["one_by_one_seconds"] > 0
    assert first.summary["timing"]["sweep_wall_seconds"] >= timing["points_wall_seconds"]


@pytest.mark.slow
def test_a_latent_ldp_level_remeasures_finished_points_without_retraining_in_two_workers(sweep_runs):
    ldp = sweep_runs.ldp
    assert ldp.stamps == sweep_runs.first.stamps
    rows = ldp.rows
    assert [(r["point"], r["latent_ldp_noise"], r["status"]) for r in rows] == [
        ("adam", None, "done"), ("adam", 4.0, "done"), ("dpadam_nm0.5", None, "failed"),
        ("dpadam_nm1", None, "done"), ("dpadam_nm1", 4.0, "done"),
    ]  # fmt: skip
    want = latent_ldp.epsilon(latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=4.0))["epsilon_pld"]
    assert rows[4]["latent_ldp_epsilon"] == pytest.approx(want) and rows[4]["latent_ldp_l2_bound"] > 0
    assert rows[4]["epsilon_pld"] == rows[3]["epsilon_pld"]  # the same trained autoencoder
    assert f"| 4 | 1e-05 | {want:.4g} |" in ldp.files.plan_md
    assert "| dpadam_nm1 | - | 4 | done |" in ldp.files.md  # an LDP row: no camera mechanism
    assert ldp.files.timing["mode"] == "2 CPU processes" and ldp.files.timing["points_run"] == 3
    assert {p["worker"] for p in ldp.files.timing["points"].values()} == {0, 1}
    assert ldp.adam_log_size > 0
    assert "not valid JSON" in ldp.broken_error["error"]  # failed in a worker


@pytest.mark.slow
def test_the_published_latent_ldp_bound_is_a_statistic_of_public_images(sweep_runs):
    """The bound C is the exported encoder's median latent norm over public crops, not over the
    private training frames."""
    row = sweep_runs.ldp.rows[4]
    encode_fn, _ = autoencoder_io.load_encoder(sweep_runs.points / "dpadam_nm1" / "export")
    seed = sweep_runs.config.privacy.seed
    crops = public_images.random_crops(np.random.default_rng(seed), 64, 48, 64)
    norms = np.linalg.norm(np.asarray(encode_fn(crops.astype(np.float32) / 255)).reshape(64, -1), axis=1)
    assert row["latent_ldp_l2_bound"] == pytest.approx(float(np.median(norms)), rel=1e-4)


@pytest.mark.slow
def test_a_rerun_skips_finished_points_and_retries_the_failed_one(sweep_runs):
    rerun = sweep_runs.rerun
    assert "skipping 2 finished point(s): adam, dpadam_nm1" in rerun.out
    assert rerun.stamps == sweep_runs.first.stamps  # nothing saved is touched
    assert rerun.error_time > sweep_runs.ldp.error_time
    assert rerun.timing["points_run"] == 1


@pytest.mark.slow
def test_a_changed_autoencoder_config_is_refused_before_anything_runs(sweep_runs):
    config = ml_collections.ConfigDict(sweep_runs.config.to_dict())  # the fixture's stays as it ran
    config.autoencoder.schedule.max_steps = 3
    with pytest.raises(ValueError, match=r"another autoencoder config \(differs at schedule.max_steps\)"):
        run.run_sweep(config, sweep_runs.workdir, parallel=1)


def test_the_mechanism_axis_gives_one_row_per_mechanism_and_a_frontier_per_mechanism():
    parse = frame_privacy.parse
    assert parse("redact_fill@0.8+ae").redaction_spec == "fill@0.8" and parse("ae").redaction_spec == ""
    assert (
        parse("redact_fill+ae").redaction_spec == "fill"
        and parse("redact_blur@0.5").redaction_spec == "blur@0.5"
    )
    trains = {n: parse(n).trains_classifier for n in ("ae", "redact_fill+ae", "clear", "blur6", "ldp1.0+ae")}
    assert trains == {"ae": True, "redact_fill+ae": True, "clear": False, "blur6": False, "ldp1.0+ae": False}
    point = types.SimpleNamespace(name="dpadam_nm1", optimizer="dpadam", noise_multiplier=1.0)
    privacy = {
        "reference": {"reid_top1_clear_crops": 1.0},
        "levels": [{"latent_ldp_noise": None, "ssim": 0.5}],
    }
    mechanisms = {
        "ae": ({"mechanism": "ae", "adaptive_reid_top1": 0.8}, {"fl_auc": 0.7}),
        "redact_fill@0.8+ae": (
            {"mechanism": "redact_fill@0.8+ae", "adaptive_reid_top1": 0.1},
            {"fl_auc": 0.65},
        ),
    }
    rows = execute.point_rows(point, {"planned_steps": 2}, {"private": True}, privacy, {}, mechanisms)
    assert [(r["mechanism"], r["fl_auc"], r["adaptive_reid_top1"]) for r in rows] == [
        ("ae", 0.7, 0.8), ("redact_fill@0.8+ae", 0.65, 0.1)
    ]  # fmt: skip
    for r in rows:
        r["status"], r["latent_ldp_noise"] = "done", None
    curves = sweep_report.frontier_points(rows, "fl_auc")
    assert curves == {
        "ae": [(0.7, 0.8, None, "dpadam_nm1")],
        "redact_fill@0.8+ae": [(0.65, 0.1, None, "dpadam_nm1")],
    }
