"""The data entry points, run as a user runs them."""

import pathlib
import subprocess
import sys

from ppvad_jax.data import ucf_layout

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_make_synthetic_then_prepare(tmp_path):
    out = tmp_path / "w"
    done = run(
        "launch.make_synthetic", f"--out_dir={out}", "--num_videos=4", "--seconds=1", "--seed=5",
        "--contact_sheets", "--num_workers=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 4 videos" in done.stdout
    assert len(list((out / "contact_sheets").glob("*.png"))) == 4
    assert (out / ucf_layout.TRAIN_SPLIT).exists()
    done = run(
        "launch.prepare_data", f"--manual_dir={out}", f"--data_dir={tmp_path / 'd'}",
        "--config=configs/ucf_crime2local.py:runlocal", "--config.num_workers=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hard_anomaly" in done.stdout and "train" in done.stdout


def test_prepare_without_data_says_what_to_download(tmp_path):
    done = run("launch.prepare_data", f"--manual_dir={tmp_path / 'none'}", f"--data_dir={tmp_path / 'd'}")
    assert done.returncode != 0
    assert "Put the raw data in MANUAL_DIR" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_typo_in_a_config_override_fails(tmp_path):
    done = run(
        "launch.prepare_data",
        f"--manual_dir={tmp_path}",
        f"--data_dir={tmp_path / 'd'}",
        "--config.fps_nomal=3",
    )
    assert done.returncode != 0
    assert "fps_nomal" in done.stderr
