"""UCF-Crime's ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``.

Each row: ``name class s1 e1 s2 e2``, whitespace separated; -1 means "no
event". Normal videos have all four numbers -1. Events are inclusive frame
ranges.

Frame numbering is not settled in public code, so it is a parameter:
``frame_base=1`` (default) reads the numbers as 1-based, as UCF-Crime's own
MATLAB evaluation indexes them (``gt(s:e) = 1``); ``frame_base=0`` reads them as
0-based array indices. Either way the labels returned are indexed from 0.
"""

import dataclasses
import pathlib

import numpy as np

from ppvad_jax.data import errors, ucf_layout


@dataclasses.dataclass(frozen=True)
class TemporalAnnotation:
    name: str
    video_class: str
    events: tuple  # ((start, end), ...) inclusive, as written in the file


def parse_file(path):
    """Parses the file into ``{video name: TemporalAnnotation}``.

    Raises:
      MissingDataError: if the file does not exist.
      AnnotationError: on a malformed row (file and line number).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.MissingDataError(
            f"{path} is missing: it ships with UCF-Crime "
            "(Temporal_Anomaly_Annotation_for_Testing_Videos.txt)."
        )
    result = {}
    with open(path, encoding="utf-8-sig") as f:
        for line_number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise errors.AnnotationError(path, line_number, f"expected 6 fields, got {len(fields)}", line)
            try:
                numbers = [int(v) for v in fields[2:]]
            except ValueError:
                raise errors.AnnotationError(
                    path, line_number, "frame numbers must be integers", line
                ) from None
            events = []
            for start, end in (numbers[0:2], numbers[2:4]):
                if (start == -1) != (end == -1):
                    raise errors.AnnotationError(
                        path, line_number, "an event needs both start and end (or both -1)", line
                    )
                if start == -1:
                    continue
                if start < 0 or end < start:
                    raise errors.AnnotationError(path, line_number, f"bad event range {start}..{end}", line)
                events.append((start, end))
            name = ucf_layout.strip_video_suffix(fields[0])
            if name in result:
                raise errors.AnnotationError(path, line_number, f"duplicate video {name!r}", line)
            result[name] = TemporalAnnotation(name, fields[1], tuple(events))
    return result


def frame_labels(annotation, *, num_frames, frame_base=1):
    """Binary per-frame labels (uint8, 1 = anomalous), indexed from 0."""
    if frame_base not in (0, 1):
        raise ValueError(f"frame_base must be 0 or 1, got {frame_base!r}")
    labels = np.zeros((num_frames,), np.uint8)
    for start, end in annotation.events:
        first = start - frame_base
        if first < 0:
            raise ValueError(
                f"{annotation.name}: event starts at frame {start}, impossible if "
                f"frames are {frame_base}-based"
            )
        labels[first : end - frame_base + 1] = 1
    return labels
