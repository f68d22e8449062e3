"""The operator tools around the server say what is wrong, never crash with a traceback, and
never stay silent about a build that lost something. Each docstring names the defect it guards
and what the old code did."""

import shutil
import subprocess
import sys

import pytest

from configs import ucf_crime2local as data_config
from ppvad_jax.data import prepare, ucf_layout
from tests import serving_support as support


@pytest.mark.parametrize(
    "name, data",
    [
        ("resnet.npz", b"PK\x03\x04 not really a zip archive"),
        ("resnet.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{\xff\xfe broken header"),
        ("resnet.pth", b"\x80\x02 neither a zip nor a legacy torch pickle"),  # torch_pickle, no torch
    ],
)
def test_convert_weights_names_a_corrupt_file_without_a_traceback(tmp_path, name, data):
    """Defect 8: a corrupt .npz / .safetensors made launch.convert_weights print a traceback
    (zipfile.BadZipFile, a bare ValueError); now one line naming the file, exit 1, no output."""
    source = tmp_path / name
    source.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-m", "launch.convert_weights", "--from=torchvision", f"--input={source}",
         f"--output={tmp_path / 'out'}"],
        cwd=support.ROOT, env=support.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot convert {source}: ")
    assert not (tmp_path / "out").exists()


def _train_names(root):
    return ucf_layout.read_split_file(root / ucf_layout.TRAIN_SPLIT)


def test_a_split_that_lost_a_class_to_skipped_videos_is_warned_about(world_copy, tmp_path):
    """Defect 8: when every anomalous video of a split was skipped, the build succeeded with a
    train split of normal videos only and no word about it (a classifier trained on it learns
    nothing); now a warning names the split, what it lost, the skipped videos and the fix."""
    root, _ = world_copy
    videos = ucf_layout.find_videos(root)
    anomalous = [n for n in _train_names(root) if not n.startswith("Normal")]
    for name in anomalous:
        videos[name].write_bytes(b"not a video" * 50)
    summary = prepare.prepare(
        manual_dir=root, data_dir=tmp_path / "tfds", config=data_config.get_config("runlocal")
    )
    assert summary["frames"]["train"]["soft_anomaly"] == summary["frames"]["train"]["hard_anomaly"] == 0
    split_warnings = [w for w in summary["warnings"] if w["name"] == "(split)"]
    assert [w["split"] for w in split_warnings] == ["train"]
    text = split_warnings[0]["warning"]
    for name in anomalous:
        assert name in text and ucf_layout.video_class(name) in text
    assert "anomalous frames" in text and "--overwrite" in text
    assert "[train] (split): has no" in prepare.format_summary(summary)


def test_a_build_reused_after_the_source_was_repaired_says_to_overwrite(tiny_world, world_copy, tmp_path):
    """Defect 8: after a skipped video was repaired, prepare_data said "already built" and kept
    the build without it, with no hint; now it says the source changed and names --overwrite."""
    original, _ = tiny_world
    root, _ = world_copy
    config = data_config.get_config("runlocal")
    name = _train_names(root)[0]
    video = ucf_layout.find_videos(root)[name]
    video.write_bytes(b"not a video" * 50)
    first = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config)
    assert [s["name"] for s in first["skipped"]] == [name]
    again = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config)
    assert again["reused"] and not again["source_changed"]  # nothing changed: no hint
    assert "--overwrite" not in prepare.format_summary(again)
    shutil.copy2(ucf_layout.find_videos(original)[name], video)  # the repair
    repaired = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config)
    assert repaired["reused"] and repaired["source_changed"]
    assert "rerun with --overwrite" in prepare.format_summary(repaired).splitlines()[1]
    rebuilt = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config, overwrite=True)
    assert rebuilt["skipped"] == [] and rebuilt["videos"]["train"] == first["videos"]["train"] + 1
