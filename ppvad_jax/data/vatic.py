"""UCFCrime2Local's Vatic annotations, and per-frame labels from them.

A row is ``track_id xmin ymin xmax ymax frame lost occluded generated "label"``,
space separated, optionally followed by quoted attributes. One row per frame per
track. ``lost=0`` means the annotated object (the anomaly) is visible.

Frame numbering. Vatic itself numbers frames from 0, but some UCFCrime2Local
files are 1-based. The rule used here (``frame_base="auto"``):

1. a file that mentions frame 0 is 0-based;
2. otherwise, if the video's frame count N is known and the largest frame in
   the file is exactly N, the file is 1-based (a 0-based file ends at N-1,
   since Vatic writes a row for every frame of every track);
3. otherwise 0-based, Vatic's own convention.

``frame_base=0`` or ``1`` forces a convention. The rule that was applied is
returned so the builder can record it per video.
"""

import dataclasses
import pathlib
import shlex

import numpy as np

from ppvad_jax.data import errors, ucf_layout


@dataclasses.dataclass(frozen=True)
class VaticRow:
    track_id: int
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    frame: int
    lost: bool
    occluded: bool
    generated: bool
    label: str
    attributes: tuple = ()


def _flag(value, name, path, line_number, line):
    if value not in ("0", "1"):
        raise errors.AnnotationError(path, line_number, f"field {name!r} must be 0 or 1, got {value!r}", line)
    return value == "1"


def parse_row(line, *, path="<string>", line_number=1):
    """Parses one Vatic row. Raises AnnotationError naming file and line."""
    try:
        fields = shlex.split(line)
    except ValueError as e:  # unbalanced quotes
        raise errors.AnnotationError(path, line_number, f"cannot split row: {e}", line) from None
    if len(fields) < 10:
        raise errors.AnnotationError(
            path, line_number, f"expected at least 10 fields, got {len(fields)}", line
        )
    names = ("track_id", "xmin", "ymin", "xmax", "ymax", "frame")
    ints = []
    for name, value in zip(names, fields[:6], strict=True):
        try:
            ints.append(int(value))
        except ValueError:
            raise errors.AnnotationError(
                path, line_number, f"field {name!r} must be an integer, got {value!r}", line
            ) from None
    track_id, xmin, ymin, xmax, ymax, frame = ints
    if frame < 0:
        raise errors.AnnotationError(path, line_number, f"negative frame {frame}", line)
    if xmax < xmin or ymax < ymin:
        raise errors.AnnotationError(path, line_number, "box has xmax < xmin or ymax < ymin", line)
    lost, occluded, generated = (
        _flag(fields[6 + i], name, path, line_number, line)
        for i, name in enumerate(("lost", "occluded", "generated"))
    )
    return VaticRow(
        track_id=track_id,
        xmin=xmin,
        ymin=ymin,
        xmax=xmax,
        ymax=ymax,
        frame=frame,
        lost=lost,
        occluded=occluded,
        generated=generated,
        label=fields[9],
        attributes=tuple(fields[10:]),
    )


def parse_file(path):
    """Parses a Vatic annotation file; blank lines are skipped.

    Raises:
      MissingDataError: if the file does not exist.
      AnnotationError: on the first malformed row, with file and line number.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.MissingDataError(
            f"annotation file {path} is missing.\n" + ucf_layout.DOWNLOAD_INSTRUCTIONS
        )
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for line_number, line in enumerate(f, start=1):
            if line.strip():
                rows.append(parse_row(line, path=path, line_number=line_number))
    if not rows:
        raise errors.AnnotationError(path, 1, "file has no annotation rows")
    return rows


def resolve_frame_base(rows, *, num_frames=None, frame_base="auto"):
    """Returns ``(base, rule)``: the first frame's number (0 or 1) and why.

    See the module docstring for the rule.
    """
    frames = [r.frame for r in rows]
    if frame_base in (0, 1):
        if min(frames) < frame_base:
            raise ValueError(f"frame {min(frames)} cannot exist in a {frame_base}-based file")
        return frame_base, "forced"
    if frame_base != "auto":
        raise ValueError(f"frame_base must be 0, 1 or 'auto', got {frame_base!r}")
    if min(frames) == 0:
        return 0, "has frame 0"
    if num_frames is not None and max(frames) == num_frames:
        return 1, "last frame equals the frame count"
    return 0, "Vatic default"


@dataclasses.dataclass(frozen=True)
class FrameLabels:
    labels: np.ndarray  # int8 [num_frames]: NORMAL, SOFT or HARD.
    frame_base: int
    frame_base_rule: str
    rows_out_of_range: int  # rows whose frame is past the end of the video


def anomalous_video_labels(rows, *, num_frames, frame_base="auto"):
    """Per-frame labels of an anomalous video.

    A frame where any track has ``lost=0`` is a hard anomaly; every other frame
    of the video is a soft anomaly (the paper's rule).
    """
    base, rule = resolve_frame_base(rows, num_frames=num_frames, frame_base=frame_base)
    labels = np.full((num_frames,), ucf_layout.SOFT, np.int8)
    out_of_range = 0
    for row in rows:
        index = row.frame - base
        if index >= num_frames:
            out_of_range += 1
        elif not row.lost:
            labels[index] = ucf_layout.HARD
    return FrameLabels(labels, base, rule, out_of_range)


def normal_video_labels(num_frames):
    return FrameLabels(np.full((num_frames,), ucf_layout.NORMAL, np.int8), 0, "normal video", 0)


def format_row(row):
    """Writes a row in the format ``parse_row`` reads (label and attributes quoted)."""
    quoted = " ".join(f'"{a}"' for a in (row.label, *row.attributes))
    return (
        f"{row.track_id} {row.xmin} {row.ymin} {row.xmax} {row.ymax} {row.frame} "
        f"{int(row.lost)} {int(row.occluded)} {int(row.generated)} {quoted}"
    )
