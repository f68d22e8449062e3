"""Every bad-input path of the data layer: clear errors, the build goes on, nothing is lost."""

import shutil

import numpy as np
import pytest

from configs import ucf_crime2local as data_config
from ppvad_jax.data import errors, prepare, ucf_layout, video_examples, video_io


def _config():
    return data_config.get_config("runlocal")


def _train_names(root):
    return ucf_layout.read_split_file(root / ucf_layout.TRAIN_SPLIT)


def test_corrupt_video_and_bad_annotation_are_skipped_and_listed(world_copy, tmp_path):
    root, manifest = world_copy
    videos = ucf_layout.find_videos(root)
    train = _train_names(root)
    normal = next(n for n in train if n.startswith("Normal"))
    anomalous = next(n for n in train if not n.startswith("Normal"))
    videos[normal].write_bytes(b"this is not a video" * 100)  # corrupt
    ann = root / ucf_layout.ANNOTATIONS_DIR / f"{anomalous}.txt"
    lines = ann.read_text().splitlines()
    lines[4] = '0 1 2 three 4 5 0 0 0 "Person"'  # malformed row 5
    ann.write_text("\n".join(lines) + "\n")
    summary = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=_config())
    reasons = {s["name"]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {normal, anomalous}
    assert str(videos[normal]) in reasons[normal]
    assert f"{ann}:5" in reasons[anomalous] and "'xmax' must be an integer" in reasons[anomalous]
    # The build went on: every other train video is there.
    assert summary["videos"]["train"] == len(train) - 2
    source = prepare.load_split(summary["dataset_dir"], "train")
    assert {source[i]["video_name"].decode() for i in range(len(source))} == set(train) - {normal, anomalous}
    assert "skipped 2 video(s)" in prepare.format_summary(summary)


def test_missing_video_and_missing_annotation(world_copy, tmp_path):
    root, _ = world_copy
    videos = ucf_layout.find_videos(root)
    train = _train_names(root)
    gone = train[0]
    videos[gone].unlink()
    anomalous = next(n for n in train[1:] if not n.startswith("Normal"))
    (root / ucf_layout.ANNOTATIONS_DIR / f"{anomalous}.txt").unlink()
    summary = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=_config())
    reasons = {s["name"]: s["reason"] for s in summary["skipped"]}
    assert "no video file" in reasons[gone]
    assert "has no annotation file" in reasons[anomalous]


def test_missing_manual_dir_and_readme_say_what_to_get(tmp_path, world_copy):
    with pytest.raises(errors.MissingDataError, match="Put the raw data in MANUAL_DIR"):
        prepare.prepare(manual_dir=tmp_path / "nope", data_dir=tmp_path / "tfds", config=_config())
    root, _ = world_copy
    shutil.rmtree(root / "UCFCrime2Local")
    with pytest.raises(errors.MissingDataError, match="Train_split_AD.txt is missing"):
        prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=_config())
    assert not (tmp_path / "tfds").exists()  # failed before writing anything


def test_a_split_with_no_usable_video_is_a_clear_error_and_keeps_the_old_dataset(world_copy, tmp_path):
    root, _ = world_copy
    config = _config()
    first = prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config)
    for name in _train_names(root):
        ucf_layout.find_videos(root)[name].write_bytes(b"garbage")
    with pytest.raises(errors.DataError, match="split 'train' has no usable video"):
        prepare.prepare(manual_dir=root, data_dir=tmp_path / "tfds", config=config, overwrite=True)
    # Nothing already written is lost: the earlier build is still complete and readable.
    source = prepare.load_split(first["dataset_dir"], "train")
    assert len(source) == sum(first["frames"]["train"].values())


def test_truncated_video_is_kept_with_a_warning(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
    path = tmp_path / "Normal_Videos_001_x264.avi"
    video_io.write_video(path, frames, fps=30)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # cut the file: the index still says 40 frames
    task = video_examples.VideoTask(
        name="Normal_Videos_001",
        video_path=str(path),
        annotation_path=None,
        height=48,
        width=64,
        fps_by_label=(30.0, 30.0, 30.0),
        prev_frame_fps=10.0,
        frame_base="auto",
        spill_dir=str(tmp_path),
    )
    result = video_examples.process_video(task)
    if result.error is None:  # some demuxers refuse the cut file outright; both are handled
        assert 0 < len(result.frame_indices) < 40
        assert any("truncated" in w for w in result.warnings)
        np.testing.assert_array_equal(result.frames(48, 64)[0], frames[0])
    else:
        assert str(path) in result.error


def test_unreadable_video_error_names_the_file(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(errors.VideoReadError, match=str(path)):
        video_io.video_properties(path)
    with pytest.raises(errors.VideoReadError, match="no such file"):
        video_io.video_properties(tmp_path / "missing.mp4")
