import numpy as np
import pytest

from ppvad_jax.data import errors, temporal_annotations

TEXT = """Arson011_x264.mp4  Arson  150  420  680  1267
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
Burglary005_x264.mp4 Burglary 5 8 -1 -1
"""


def test_parses_events_and_normals(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    parsed = temporal_annotations.parse_file(path)
    assert set(parsed) == {"Arson011", "Normal_Videos_003", "Burglary005"}
    assert parsed["Arson011"].events == ((150, 420), (680, 1267))
    assert parsed["Normal_Videos_003"].events == ()
    assert parsed["Burglary005"].video_class == "Burglary"


def test_frame_base_shifts_labels(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    ann = temporal_annotations.parse_file(path)["Burglary005"]
    one_based = temporal_annotations.frame_labels(ann, num_frames=12, frame_base=1)
    zero_based = temporal_annotations.frame_labels(ann, num_frames=12, frame_base=0)
    np.testing.assert_array_equal(np.flatnonzero(one_based), [4, 5, 6, 7])
    np.testing.assert_array_equal(np.flatnonzero(zero_based), [5, 6, 7, 8])


@pytest.mark.parametrize(
    "row, message",
    [
        ("A001_x264.mp4 Arson 1 2 3", "expected 6 fields"),
        ("A001_x264.mp4 Arson 1 x -1 -1", "integers"),
        ("A001_x264.mp4 Arson 5 -1 -1 -1", "both start and end"),
        ("A001_x264.mp4 Arson 9 3 -1 -1", "bad event range"),
    ],
)
def test_malformed_rows(tmp_path, row, message):
    path = tmp_path / "t.txt"
    path.write_text(TEXT + row + "\n")
    with pytest.raises(errors.AnnotationError, match=message) as info:
        temporal_annotations.parse_file(path)
    assert f"{path}:4" in str(info.value)
