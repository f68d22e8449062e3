"""Frames from a video file, a local device or a network stream, at a fixed rate.

- A file (an existing path) is sampled by its own timestamps: at a 30 FPS
  source and ``fps=10``, every third frame. With ``realtime=True`` frames are
  released at ``fps`` in wall-clock time, as a live camera would send them;
  ``realtime=False`` releases them as fast as the consumer takes them.
- A device (an integer, e.g. ``0``) or a URL (``rtsp://``, ``http://``) is
  read continuously, so OpenCV's buffer never goes stale; the newest frame is
  released every ``1/fps`` s and the rest are dropped.

Frames are RGB uint8 resized to the encoder's input ``(height, width)``.
"""

import pathlib
import time

import cv2

from ppvad_jax.data import video_io


def _open(source):
    if str(source).isdigit():
        capture = cv2.VideoCapture(int(source))
    else:
        capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise OSError(f"cannot open video source {source!r} (not a readable file, device or stream URL)")
    return capture


def frames_at_rate(source, *, fps, size, realtime=True, clock=time.monotonic, sleep=time.sleep):
    """Yields ``(capture_time_unix, rgb_frame)`` at ``fps`` until the source ends.

    Args:
      source: a video path, a device index ("0") or a stream URL.
      fps: frames per second to release (> 0).
      size: ``(height, width)`` to resize to.
      realtime: pace files at ``fps`` in wall-clock time (live sources always are).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    is_file = pathlib.Path(str(source)).is_file()
    capture = _open(source)
    try:
        source_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        start = clock()
        released = 0
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            if is_file:
                # Keep the frame whose source time first reaches the next release time.
                keep = source_fps <= 0 or index * fps / source_fps >= released - 1e-6
                index += 1
                if not keep:
                    continue
                if realtime:
                    sleep(max(0.0, start + released / fps - clock()))
            else:
                if clock() < start + released / fps:
                    continue  # live: drain the buffer, release only on schedule
            released += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield time.time(), video_io.resize(rgb, size)
    finally:
        capture.release()
