import collections

import pytest

from ppvad_jax.data import errors, splits, ucf_layout


@pytest.mark.parametrize(
    "name, cls",
    [
        ("Arrest002", "Arrest"),
        ("Arrest002_x264.mp4", "Arrest"),
        ("Normal_Videos_003", "Normal"),
        ("Normal_Videos239_x264", "Normal"),
        ("Vandalism050_x264.avi", "Vandalism"),
    ],
)
def test_video_class(name, cls):
    assert ucf_layout.video_class(name) == cls


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="Shooting001"):
        ucf_layout.video_class("Shooting001")


def test_halving_partitions_and_preserves_class_mix():
    names = [f"Arrest{i:03d}" for i in range(5)] + [f"Normal_Videos_{i:03d}" for i in range(8)]
    names += [f"Robbery{i:03d}" for i in range(3)] + ["Stealing001"]
    val, test = splits.halve_stratified(names, seed=0)
    assert sorted(val + test) == sorted(names) and not set(val) & set(test)
    count = lambda group: collections.Counter(ucf_layout.video_class(n) for n in group)  # noqa: E731
    for cls, total in count(names).items():
        assert abs(count(val)[cls] - count(test)[cls]) <= 1, cls
        assert count(val)[cls] + count(test)[cls] == total
    assert splits.halve_stratified(names, seed=0) == (val, test)
    assert splits.halve_stratified(names, seed=1) != (val, test)


def test_split_file_errors(tmp_path):
    path = tmp_path / "Train_split_AD.txt"
    path.write_text("Arrest001\n\nArrest002_x264.mp4\n")
    assert ucf_layout.read_split_file(path) == ["Arrest001", "Arrest002"]
    path.write_text("Arrest001\nArrest001\n")
    with pytest.raises(errors.AnnotationError, match=r"Train_split_AD.txt:2: duplicate"):
        ucf_layout.read_split_file(path)
    path.write_text("Arrest001 Arrest002\n")
    with pytest.raises(errors.AnnotationError, match=r":1: expected one video name"):
        ucf_layout.read_split_file(path)
    with pytest.raises(errors.MissingDataError, match="UCFCrime2Local"):
        ucf_layout.read_split_file(tmp_path / "missing.txt")


def test_find_videos_rejects_duplicates_and_missing_dirs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "Arrest001_x264.mp4").write_bytes(b"x")
    assert ucf_layout.find_videos(tmp_path) == {"Arrest001": tmp_path / "a" / "Arrest001_x264.mp4"}
    (tmp_path / "b" / "Arrest001_x264.avi").write_bytes(b"x")
    with pytest.raises(ValueError, match="found twice"):
        ucf_layout.find_videos(tmp_path)
    with pytest.raises(errors.MissingDataError, match="Put the raw data"):
        ucf_layout.find_videos(tmp_path / "nothing")
