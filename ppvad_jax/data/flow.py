"""Optical flow between two frames, encoded as a 3-channel image for an ImageNet CNN.

Methods:
- ``dis`` (default): OpenCV's DIS flow, preset MEDIUM. Fast and dense.
- ``farneback``: Farneback's polynomial-expansion flow, the paper-era choice.
- ``tvl1``: TV-L1, only when opencv-contrib (``cv2.optflow``) is installed.

Encoding (``encode_flow``), with ``bound`` in pixels (default 16 at the frame's
own resolution; flow larger than that saturates):

- channel 0: horizontal flow u, ``128 + 127.5 * clip(u / bound, -1, 1)``
- channel 1: vertical flow v, the same mapping
- channel 2: magnitude, ``255 * clip(|(u, v)| / bound, 0, 1)``

Zero motion is (128, 128, 0): mid-grey channels 0-1, so a pretrained CNN sees
sign-symmetric inputs around its mean, and a dark channel 2 where nothing moves.
"""

import concurrent.futures
import multiprocessing

import cv2
import numpy as np

METHODS = ("dis", "farneback", "tvl1")


def _grey(frame):
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame [H, W, 3], got {frame.dtype} {frame.shape}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(prev, curr, *, method="dis"):
    """Dense flow from ``prev`` to ``curr`` (RGB uint8), float32 [H, W, 2] in pixels.

    ``flow[y, x] = (u, v)`` means the point at (x, y) in ``prev`` is at
    (x + u, y + v) in ``curr``.
    """
    if np.shape(prev) != np.shape(curr):
        raise ValueError(f"frames differ in shape: {np.shape(prev)} vs {np.shape(curr)}")
    a, b = _grey(prev), _grey(curr)
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(
            a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
        )
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise ValueError("method 'tvl1' needs opencv-contrib-python-headless (cv2.optflow)")
        return cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; choose one of {METHODS}")


def encode_flow(flow, *, bound=16.0):
    """float [H, W, 2] flow -> uint8 [H, W, 3] image (see the module docstring)."""
    flow = np.asarray(flow, np.float32)
    if not np.all(np.isfinite(flow)):
        raise ValueError("flow has non-finite values")
    uv = 128.0 + 127.5 * np.clip(flow / bound, -1.0, 1.0)
    magnitude = 255.0 * np.clip(np.linalg.norm(flow, axis=-1) / bound, 0.0, 1.0)
    image = np.concatenate([uv, magnitude[..., None]], axis=-1)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def flow_image(prev, curr, *, method="dis", bound=16.0):
    """The encoded flow image between two RGB frames."""
    return encode_flow(optical_flow(prev, curr, method=method), bound=bound)


def _flow_chunk(args):
    prevs, currs, method, bound = args
    cv2.setNumThreads(1)  # one process per core already
    return np.stack([flow_image(p, c, method=method, bound=bound) for p, c in zip(prevs, currs, strict=True)])


def flow_images(prev_frames, frames, *, method="dis", bound=16.0, num_workers=0, chunk=16):
    """Encoded flow images for a batch of frame pairs, uint8 [N, H, W, 3].

    With ``num_workers > 0`` the pairs are split into chunks over that many
    processes (spawned: safe after JAX has started threads).
    """
    prev_frames, frames = np.asarray(prev_frames), np.asarray(frames)
    if prev_frames.shape != frames.shape or frames.ndim != 4:
        raise ValueError(f"expected two [N, H, W, 3] batches, got {prev_frames.shape} and {frames.shape}")
    jobs = [
        (prev_frames[i : i + chunk], frames[i : i + chunk], method, bound)
        for i in range(0, len(frames), chunk)
    ]
    if not jobs:
        return np.zeros(frames.shape, np.uint8)
    if num_workers <= 0:
        return np.concatenate([_flow_chunk(j) for j in jobs])
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        return np.concatenate(list(pool.map(_flow_chunk, jobs)))
