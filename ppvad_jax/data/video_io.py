"""Reading and writing video files with OpenCV. Frames are RGB uint8 [H, W, 3]."""

import pathlib

import cv2
import numpy as np

from ppvad_jax.data import errors


def open_video(path):
    """Opens a video for reading; raises VideoReadError naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.VideoReadError(path, "no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise errors.VideoReadError(path, "OpenCV cannot open it (corrupt or unknown format)")
    return capture


def video_properties(path):
    """``{fps, frame_count, width, height}`` as the container reports them.

    ``frame_count`` is counted by decoding when the container does not say.
    """
    capture = open_video(path)
    try:
        props = {
            "fps": float(capture.get(cv2.CAP_PROP_FPS)),
            "frame_count": int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        }
        if props["frame_count"] <= 0:
            count = 0
            while capture.grab():
                count += 1
            props["frame_count"] = count
    finally:
        capture.release()
    if props["frame_count"] <= 0:
        raise errors.VideoReadError(path, "it has no frames")
    return props


def resize(frame, size):
    """Resizes an image to ``size=(height, width)``; area filter when shrinking."""
    height, width = size
    if frame.shape[:2] == (height, width):
        return frame
    shrink = height < frame.shape[0] or width < frame.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def read_frames(path, indices=None, *, size=None):
    """Yields ``(index, rgb_frame)`` for the wanted frame indices, in order.

    Decodes sequentially (seeking is not frame-exact on every codec) and only
    converts the frames that are kept: ``grab()`` skips the colour conversion.
    Stops early, without error, where the stream ends; callers compare counts.

    Args:
      path: a video file.
      indices: increasing frame indices to keep; None keeps every frame.
      size: optional ``(height, width)`` to resize to.
    """
    capture = open_video(path)
    wanted = None if indices is None else iter(np.asarray(indices, np.int64).tolist())
    target = None if wanted is None else next(wanted, None)
    index = 0
    try:
        while wanted is None or target is not None:
            if target is not None and index < target:
                if not capture.grab():
                    return
                index += 1
                continue
            ok, frame = capture.read()
            if not ok:
                return
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield index, (resize(frame, size) if size else frame)
            index += 1
            if wanted is not None:
                target = next(wanted, None)
    finally:
        capture.release()


CODECS = {"ffv1": ("FFV1", ".avi"), "mp4v": ("mp4v", ".mp4")}


def write_video(path, frames, *, fps, codec="ffv1"):
    """Writes RGB frames to ``path``; FFV1 is lossless, mp4v is lossy but small.

    Writes to a temporary name first, so an interrupted write never leaves a
    half-written file under the final name.
    """
    fourcc, _ = CODECS[codec]
    path = pathlib.Path(path)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    writer = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
                if not writer.isOpened():
                    raise errors.VideoReadError(path, f"OpenCV cannot write codec {codec}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"no frames to write to {path}")
    tmp.replace(path)
