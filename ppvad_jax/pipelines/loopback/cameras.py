"""The simulated cameras of the loopback jobs: names, a throwaway PKI and looped source clips."""

import glob

import numpy as np

from ppvad_jax.serving import camera_source, tls


class NoVideoError(ValueError):
    """No source video matches the glob; the launchers report it as a usage error."""


def camera_ids(count: int) -> list[str]:
    """``cam1`` ... ``cam<count>``, the names in the certificates."""
    return [f"cam{i + 1}" for i in range(count)]


def make_pki(certs_dir: str, cameras: list[str]) -> None:
    """A throwaway PKI of this run's own: a rerun in the same workdir replaces it."""
    tls.make_development_pki(certs_dir, cameras, force=True)


def source_videos(pattern: str) -> list[str]:
    """The videos matching ``pattern``, sorted; NoVideoError when there is none."""
    videos = sorted(glob.glob(pattern))
    if not videos:
        raise NoVideoError(f"no video matches {pattern!r} (python -m launch.make_synthetic)")
    return videos


def looped_frames(path: str, *, fps: float, size: tuple[int, int], num_frames: int) -> list[np.ndarray]:
    """``num_frames`` RGB frames of ``path`` at ``fps`` and ``size``, looping the video."""
    frames = []
    while len(frames) < num_frames:
        before = len(frames)
        for _, frame in camera_source.frames_at_rate(path, fps=fps, size=size, realtime=False):
            frames.append(frame)
            if len(frames) == num_frames:
                break
        if len(frames) == before:
            raise ValueError(f"{path} has no frames")
    return frames
