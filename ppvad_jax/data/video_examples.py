"""Turns one video into sampled, labelled frames: the unit of parallel work.

``process_video`` runs in a worker process. It decodes the kept frames straight
into a raw "spill" file on disk and returns only metadata, so memory stays
bounded whatever the video's length (an hour of UCF-Crime at 10 FPS and
240x320 is 8 GB of frames) and nothing large crosses the process boundary.
It never raises for a bad video: the error comes back in the result, naming the
file, so one bad item cannot kill a long build.
"""

import dataclasses
import os
import pathlib
import traceback

import numpy as np

from ppvad_jax.data import errors, sampling, ucf_layout, vatic, video_io


@dataclasses.dataclass(frozen=True)
class VideoTask:
    name: str
    video_path: str
    annotation_path: str | None  # None for normal videos
    height: int
    width: int
    fps_by_label: tuple  # fps for (NORMAL, SOFT, HARD)
    prev_frame_fps: float  # previous frame 1/prev_frame_fps s earlier; 0: previous sampled frame
    frame_base: object  # 0, 1 or "auto"
    spill_dir: str


@dataclasses.dataclass
class VideoResult:
    name: str
    video_class: str
    error: str | None = None
    frame_indices: np.ndarray | None = None  # kept (sampled) frames, increasing
    prev_indices: np.ndarray | None = None  # the previous frame of each kept frame
    labels: np.ndarray | None = None  # label of each kept frame
    decoded_indices: np.ndarray | None = None  # union of kept and previous frames, increasing
    spill_path: str | None = None  # raw uint8 [len(decoded_indices), H, W, 3]
    frame_count: int = 0
    fps: float = 0.0
    frame_base: int | None = None
    frame_base_rule: str = ""
    warnings: list = dataclasses.field(default_factory=list)

    def frames(self, height, width):
        """The decoded frames (``decoded_indices``), memory-mapped from the spill file."""
        shape = (len(self.decoded_indices), height, width, 3)
        return np.memmap(self.spill_path, dtype=np.uint8, mode="r", shape=shape)


def previous_frames(frame_indices, *, source_fps, prev_frame_fps):
    """The frame each kept frame's optical flow starts from.

    With ``prev_frame_fps > 0`` it is a fixed time earlier (by default 1/10 s,
    what a camera sending 10 FPS gives the server), whatever the frame's label.
    With 0 it is the previously sampled frame, the paper's literal reading; but
    then the gap is 10 frames inside anomalies and 3 elsewhere, so the size of
    the motion alone tells the label, a shortcut a classifier will learn.
    """
    if prev_frame_fps <= 0:
        return sampling.previous_indices(frame_indices)
    gap = sampling.stride_for(source_fps=source_fps, target_fps=prev_frame_fps)
    return np.maximum(np.asarray(frame_indices, np.int64) - gap, 0)


def frame_labels(task, video_class, frame_count):
    if video_class == "Normal":
        return vatic.normal_video_labels(frame_count)
    if task.annotation_path is None:
        raise errors.MissingDataError(
            f"anomalous video {task.name} has no annotation file in {ucf_layout.ANNOTATIONS_DIR}"
        )
    rows = vatic.parse_file(task.annotation_path)
    return vatic.anomalous_video_labels(rows, num_frames=frame_count, frame_base=task.frame_base)


def process_video(task):
    """Decodes, labels and samples one video. Returns a VideoResult."""
    result = VideoResult(name=task.name, video_class="?")
    try:
        result.video_class = ucf_layout.video_class(task.name)
        props = video_io.video_properties(task.video_path)
        result.fps = props["fps"] if props["fps"] > 0 else 30.0
        if props["fps"] <= 0:
            result.warnings.append("container has no frame rate; assumed 30 FPS")
        result.frame_count = props["frame_count"]
        labelled = frame_labels(task, result.video_class, result.frame_count)
        result.frame_base, result.frame_base_rule = labelled.frame_base, labelled.frame_base_rule
        if labelled.rows_out_of_range:
            result.warnings.append(
                f"{labelled.rows_out_of_range} annotation rows are past the last frame ({result.frame_count})"
            )
        fps_by_label = dict(enumerate(task.fps_by_label))
        wanted = sampling.adaptive_sample_indices(
            labelled.labels, source_fps=result.fps, fps_by_label=fps_by_label
        )
        prev = previous_frames(wanted, source_fps=result.fps, prev_frame_fps=task.prev_frame_fps)
        needed = np.union1d(wanted, prev)
        spill = pathlib.Path(task.spill_dir) / f"{task.name}.{os.getpid()}.raw"
        decoded = []
        with open(spill, "wb") as f:
            for index, frame in video_io.read_frames(task.video_path, needed, size=(task.height, task.width)):
                f.write(np.ascontiguousarray(frame).tobytes())
                decoded.append(index)
        if not decoded:
            spill.unlink()
            raise errors.VideoReadError(task.video_path, "no frame could be decoded")
        result.spill_path = str(spill)
        result.decoded_indices = np.asarray(decoded, np.int64)
        keep = wanted <= decoded[-1]  # a truncated stream loses its tail
        result.frame_indices, result.prev_indices = wanted[keep], prev[keep]
        result.labels = labelled.labels[result.frame_indices]
        if not keep.any():
            raise errors.VideoReadError(task.video_path, "no sampled frame could be decoded")
        if not keep.all():
            result.warnings.append(
                f"stream ended after frame {decoded[-1]} of {result.frame_count}: "
                f"kept {keep.sum()} of {len(wanted)} sampled frames (truncated file?)"
            )
    except errors.DataError as e:
        result.error = str(e)
    except Exception as e:  # a bug or an exotic decoder failure: report, don't die
        result.error = f"{task.video_path}: {type(e).__name__}: {e}\n{traceback.format_exc()}"
    return result
