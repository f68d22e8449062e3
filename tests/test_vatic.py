import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppvad_jax.data import errors, ucf_layout, vatic


def test_parses_quoted_label_with_spaces_and_extra_attributes():
    row = vatic.parse_row('3 10 20 30 40 17 0 1 1 "Person walking" "attacker" "red shirt"')
    assert (row.track_id, row.xmin, row.ymin, row.xmax, row.ymax, row.frame) == (3, 10, 20, 30, 40, 17)
    assert (row.lost, row.occluded, row.generated) == (False, True, True)
    assert row.label == "Person walking"
    assert row.attributes == ("attacker", "red shirt")


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 1 2 3 4 5 0 0 0", "at least 10 fields"),
        ('0 1 2 x 4 5 0 0 0 "P"', "'xmax' must be an integer"),
        ('0 1 2 3 4 5 2 0 0 "P"', "'lost' must be 0 or 1"),
        ('0 1 2 3 4 5 0 0 0 "Person', "cannot split row"),
        ('0 9 2 3 4 5 0 0 0 "P"', "xmax < xmin"),
        ('0 1 2 3 4 -1 0 0 0 "P"', "negative frame"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "Arrest001.txt"
    path.write_text('0 1 2 3 4 0 1 0 0 "Person"\n\n' + line + "\n")
    with pytest.raises(errors.AnnotationError) as info:
        vatic.parse_file(path)
    assert f"{path}:3" in str(info.value)
    assert message in str(info.value)
    assert info.value.line_number == 3


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    with pytest.raises(errors.AnnotationError, match="no annotation rows"):
        vatic.parse_file(empty)
    with pytest.raises(errors.MissingDataError, match="missing"):
        vatic.parse_file(tmp_path / "nope.txt")


def _rows(frames, lost_frames=()):
    return [vatic.VaticRow(0, 1, 1, 5, 5, f, f in lost_frames, False, False, "P") for f in frames]


def test_frame_base_rules():
    assert vatic.resolve_frame_base(_rows(range(0, 10)), num_frames=10) == (0, "has frame 0")
    # 1-based: rows for every frame, the last one equal to the frame count.
    assert vatic.resolve_frame_base(_rows(range(1, 11)), num_frames=10)[0] == 1
    # Starts late, ends before the end: Vatic's own 0-based convention.
    assert vatic.resolve_frame_base(_rows(range(3, 8)), num_frames=10) == (0, "Vatic default")
    assert vatic.resolve_frame_base(_rows(range(3, 8)), frame_base=1) == (1, "forced")
    with pytest.raises(ValueError):
        vatic.resolve_frame_base(_rows(range(0, 5)), frame_base=1)


@pytest.mark.parametrize("base", [0, 1])
def test_labels_hard_where_not_lost_soft_elsewhere(base):
    # Visible (lost=0) on 0-based frames 4..6 only.
    rows = [vatic.VaticRow(0, 1, 1, 5, 5, t + base, not 4 <= t <= 6, False, False, "P") for t in range(10)]
    labelled = vatic.anomalous_video_labels(rows, num_frames=10)
    assert labelled.frame_base == base
    expected = np.full(10, ucf_layout.SOFT)
    expected[4:7] = ucf_layout.HARD
    np.testing.assert_array_equal(labelled.labels, expected)


def test_rows_past_the_end_are_counted_not_indexed():
    labelled = vatic.anomalous_video_labels(_rows(range(0, 12)), num_frames=10, frame_base=0)
    assert labelled.rows_out_of_range == 2
    assert (labelled.labels == ucf_layout.HARD).all()  # every row is visible (lost=0)


_names = st.text(alphabet="abcdefghij XYZ_-", min_size=1, max_size=12).filter(lambda s: s.strip() == s and s)


@given(
    st.integers(0, 99),
    st.integers(0, 300),
    st.integers(0, 200),
    st.integers(0, 5000),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    _names,
    st.lists(_names, max_size=3),
)
def test_format_then_parse_round_trips(track, x, y, frame, lost, occluded, generated, label, attrs):
    row = vatic.VaticRow(track, x, y, x + 7, y + 9, frame, lost, occluded, generated, label, tuple(attrs))
    assert vatic.parse_row(vatic.format_row(row)) == row
