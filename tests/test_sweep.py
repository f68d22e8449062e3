"""The noise sweep end to end on a tiny prepared dataset: epsilon plan, results, resume, failures, plots."""

import csv
import json

import numpy as np
import pytest

from configs import sweep_noise
from ppvad_jax.data import public_images
from ppvad_jax.evaluation import sweep_report
from ppvad_jax.models import autoencoder_io
from ppvad_jax.privacy import accounting, latent_ldp
from ppvad_jax.training import sweep
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
    return config


def test_grid_adam_once_overrides_and_clear_errors(tmp_path):
    config = sweep_noise.get_config()
    names = [p.name for p in sweep.grid(config)]
    assert len(names) == 1 + 3 * 5 and names[0] == "adam" and "dpadagrad_nm0.25" in names
    config.optimizers = ("dpsgd,dpadam",)  # what --config.optimizers=dpsgd,dpadam gives
    config.noise_multipliers = (0.5,)
    points = sweep.grid(config)
    assert [p.name for p in points] == ["dpsgd_nm0.5", "dpadam_nm0.5"]
    assert points[1].config.optimizer == "dpadam" and points[1].config.dp.noise_multiplier == 0.5
    assert config.autoencoder.dp.noise_multiplier == 1.0  # the base is not modified
    config.optimizers = ("sgd",)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        sweep.grid(config)
    config.optimizers = ("dpsgd",)
    config.noise_multipliers = (-1.0,)
    with pytest.raises(ValueError, match="noise multipliers must be finite and >= 0"):
        sweep.grid(config)
    config.noise_multipliers = (1.0,)
    with pytest.raises(ValueError, match="dataset_dir"):
        sweep.run_sweep(config, tmp_path, parallel=1)
    config.autoencoder.data.dataset_dir = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sweep.run_sweep(config, tmp_path, parallel=1)


def test_classifier_config_of_a_point(tmp_path):
    """The classifier reads the point's autoencoder; a changed classifier config gets a fresh workdir."""
    config = sweep_noise.get_config("runlocal=True")
    config.autoencoder.data.dataset_dir = "data/d"
    config.classifier.config.phase1.max_epochs = 2  # what --config.classifier.config.phase1... sets
    point = sweep.grid(config)[0]
    cls, workdir = sweep.classifier_config(tmp_path / "adam", point.config, config)
    assert cls.autoencoder_workdir == str(tmp_path / "adam") and cls.data.dataset_dir == "data/d"
    assert cls.phase1.max_epochs == 2 and cls.input_size == 112  # runlocal's classifier
    assert workdir.parent == tmp_path / "adam" and workdir.name.startswith("classifier_")
    config.classifier.config.phase1.max_epochs = 3
    assert sweep.classifier_config(tmp_path / "adam", point.config, config)[1] != workdir


def test_device_probe_and_worker_slots():
    """The probe a GPU machine runs before pinning workers (here it finds the CPU)."""
    assert sweep.probe_devices() == ("cpu", 1)
    assert sweep.worker_slots(1)["slots"] is None
    assert sweep.worker_slots(None)["slots"] is None  # CPU only: one point at a time, in-process
    assert sweep.worker_slots(3)["slots"] == [{}, {}, {}]
    with pytest.raises(ValueError, match="parallel must be >= 1"):
        sweep.worker_slots(0)


@pytest.mark.slow
def test_sweep_plans_first_records_failures_resumes_in_workers_adds_ldp_rows(dataset_dir, tmp_path, capsys):
    config = tiny_sweep(dataset_dir)
    points = tmp_path / "points"
    # One point fails: an earlier run left it a corrupt metrics.json beside its export.
    broken = points / "dpadam_nm0.5"
    (broken / "export").mkdir(parents=True)
    (broken / "export" / "spec.json").write_text("{}")
    (broken / "metrics.json").write_text("{truncated")
    summary = sweep.run_sweep(config, tmp_path, parallel=1)
    out = capsys.readouterr().out
    # The epsilon table is printed before any training, and says what the trainer then reports.
    assert out.index("Epsilon planned for each point") < out.index("[1/3] adam")
    plans = {p["point"]: p for p in json.loads((tmp_path / "epsilon_plan.json").read_text())["points"]}
    assert set(plans) == {"adam", "dpadam_nm0.5", "dpadam_nm1"}
    metrics = json.loads((points / "dpadam_nm1" / "metrics.json").read_text())
    assert (points / "dpadam_nm1" / "metrics.json").stat().st_mtime > (
        tmp_path / "epsilon_plan.json"
    ).stat().st_mtime
    assert metrics["steps"] == plans["dpadam_nm1"]["planned_steps"] == 2
    for key in ("epsilon_rdp", "epsilon_pld", "delta", "sampling_rate"):
        assert metrics[key] == plans["dpadam_nm1"][key], key
    assert f"| {metrics['epsilon_pld']:.4g} |" in out
    # Independent of the plan: the bare subsampled Gaussian at the config's own numbers.
    ae = config.autoencoder
    q = ae.dp.expected_batch_size / metrics["train_units"]
    delta = ae.dp.delta or accounting.default_delta(metrics["train_units"])
    want = accounting.epsilon_pld(accounting.DpParams(1.0, q, 2, delta))
    assert metrics["epsilon_pld"] == pytest.approx(want, rel=1e-6) and metrics[
        "sampling_rate"
    ] == pytest.approx(q)
    assert (
        plans["adam"]["epsilon_pld"] is None and plans["dpadam_nm0.5"]["epsilon_pld"] > metrics["epsilon_pld"]
    )

    # Issue 15, item 8: the private point drew its own secret, which no sweep output repeats;
    # the non-private one has none.
    words = json.loads((points / "dpadam_nm1" / "checkpoints" / "dp_secret.json").read_text())["words"]
    assert not (points / "adam" / "checkpoints" / "dp_secret.json").exists()
    published = "".join(f.read_text() for f in tmp_path.glob("*.*") if f.suffix in (".json", ".md", ".csv"))
    assert published and not any(str(w) in published for w in words if w > 10**6)

    # Every point and every column; the failing point is recorded with its error, the others finish.
    with open(tmp_path / "results.csv") as f:
        rows = {r["point"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(plans) and list(next(iter(rows.values()))) == list(sweep_report.COLUMNS)
    assert rows["dpadam_nm0.5"]["status"] == "failed"
    assert "metrics.json is not valid JSON" in rows["dpadam_nm0.5"]["error"]
    for name in ("adam", "dpadam_nm1"):
        row = rows[name]
        assert row["status"] == "done", row
        assert 0 < float(row["ssim"]) <= 1 and float(row["mse"]) > 0 and float(row["psnr"]) > 0
        assert 0 <= float(row["mia_auc"]) <= 1 and 0 <= float(row["reid_top1"]) <= 1
        assert int(row["faces_original"]) > 0 and row["face_detection_rate"] != ""
    # The CSV keeps 6 significant digits (sweep_report: format ".6g").
    assert float(rows["dpadam_nm1"]["epsilon_pld"]) == pytest.approx(metrics["epsilon_pld"], rel=1e-5)
    assert rows["adam"]["epsilon_pld"] == "" and "not private" in rows["adam"]["accountant"]
    assert "per frame" in rows["dpadam_nm1"]["accountant"]
    md = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in md for name in plans) and "not valid JSON" in md
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
    for png in ("utility_vs_epsilon.png", "privacy_vs_epsilon.png", "reconstructions.png"):
        assert (tmp_path / png).stat().st_size > 5000, png
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["points_run"] == 3 and timing["one_by_one_seconds"] > 0
    assert summary["timing"]["sweep_wall_seconds"] >= timing["points_wall_seconds"]

    # Adding a latent-LDP level re-measures the finished points (one more row each) without
    # retraining, here in two spawned worker processes (the CPU --parallel path).
    stamps = {name: (points / name / "metrics.json").stat().st_mtime_ns for name in ("adam", "dpadam_nm1")}
    config.latent_ldp.noise_multipliers = (4.0,)
    rows = sweep.run_sweep(config, tmp_path, parallel=2)["rows"]
    assert {n: (points / n / "metrics.json").stat().st_mtime_ns for n in stamps} == stamps
    assert [(r["point"], r["latent_ldp_noise"], r["status"]) for r in rows] == [
        ("adam", None, "done"), ("adam", 4.0, "done"), ("dpadam_nm0.5", None, "failed"),
        ("dpadam_nm1", None, "done"), ("dpadam_nm1", 4.0, "done"),
    ]  # fmt: skip
    want = latent_ldp.epsilon(latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=4.0))["epsilon_pld"]
    assert rows[4]["latent_ldp_epsilon"] == pytest.approx(want) and rows[4]["latent_ldp_l2_bound"] > 0
    assert rows[4]["epsilon_pld"] == rows[3]["epsilon_pld"]  # the same trained autoencoder
    # Issue 15, item 11: the published bound C is a statistic of public images, not of the
    # private training frames: the exported encoder's median norm over public crops.
    encode_fn, _ = autoencoder_io.load_encoder(points / "dpadam_nm1" / "export")
    crops = public_images.random_crops(np.random.default_rng(config.privacy.seed), 64, 48, 64)
    norms = np.linalg.norm(np.asarray(encode_fn(crops.astype(np.float32) / 255)).reshape(64, -1), axis=1)
    assert rows[4]["latent_ldp_l2_bound"] == pytest.approx(float(np.median(norms)), rel=1e-4)
    assert f"| 4 | 1e-05 | {want:.4g} |" in (tmp_path / "epsilon_plan.md").read_text()
    assert "| dpadam_nm1 | 4 | done |" in (tmp_path / "results.md").read_text()
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["mode"] == "2 CPU processes" and timing["points_run"] == 3
    assert {p["worker"] for p in timing["points"].values()} == {0, 1}
    assert (points / "adam" / "log.txt").stat().st_size > 0
    assert "not valid JSON" in json.loads((broken / "error.json").read_text())["error"]  # failed in a worker

    # A rerun skips finished points and retries the failed one; nothing saved is touched.
    error_time = (broken / "error.json").stat().st_mtime_ns
    sweep.run_sweep(config, tmp_path, parallel=1)
    assert "skipping 2 finished point(s): adam, dpadam_nm1" in capsys.readouterr().out
    assert {n: (points / n / "metrics.json").stat().st_mtime_ns for n in stamps} == stamps
    assert (broken / "error.json").stat().st_mtime_ns > error_time
    assert json.loads((tmp_path / "timing.json").read_text())["points_run"] == 1

    # A changed autoencoder config is refused before anything runs.
    config.autoencoder.schedule.max_steps = 3
    with pytest.raises(ValueError, match=r"another autoencoder config \(differs at schedule.max_steps\)"):
        sweep.run_sweep(config, tmp_path, parallel=1)


def test_a_field_added_since_a_point_ran_differs_only_when_set():
    stored = {"learning_rate": 1e-3, "dp": {"noise_multiplier": 1.0}}
    same = {"learning_rate": 1e-3, "init_from": "", "dp": {"noise_multiplier": 1.0, "unit": None}}
    assert list(sweep._diff(stored, same)) == []
    started = {**same, "init_from": "runs/ae_public", "new": {"a": 0, "b": 2}}
    assert list(sweep._diff(stored, started)) == ["init_from", "new.b"]
    assert list(sweep._diff(stored, {**same, "learning_rate": 3e-3})) == ["learning_rate"]
