"""The pieces of a privacy report on one video: the export, the video, the camera -> server path.

``pipelines.privacy_report.run`` puts them together (``launch.privacy_report``):
``export_spec`` and ``load_autoencoder`` read ``ae_workdir/export``;
``read_video`` decodes and resizes any video OpenCV can read; ``make_path`` and
``reconstruct_all`` send frames through the camera half, optional latent local
DP (``privacy.latent_ldp``) and the server half; ``training_privacy`` copies the
trainer's epsilon from ``metrics.json`` (never recomputed); ``side_by_side``
draws original | reconstruction with every face detector's boxes.
``evaluation.autoencoder_privacy`` uses the same path for the sweep.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax.typing import ArrayLike

from ppvad_jax.data import errors, video_io
from ppvad_jax.evaluation import faces
from ppvad_jax.models import autoencoder_io
from ppvad_jax.privacy import latent_ldp

# metrics.json keys copied into the report (the trainer's privacy_report and what it ran).
TRAINING_PRIVACY_KEYS = (
    "optimizer",
    "private",
    "epsilon_pld",
    "epsilon_rdp",
    "delta",
    "unit_of_privacy",
    "noise_multiplier",
    "accounted_noise_multiplier",
    "sampling_rate",
    "steps",
    "accountants",
)


# --- Inputs ---------------------------------------------------------------------------------------


def export_spec(ae_workdir: str | os.PathLike) -> dict[str, Any]:
    """``ae_workdir/export/spec.json`` as a dict; clear errors when the workdir or export is missing.

    Read on its own, before anything is decoded or compiled, so a wrong path
    fails in a second rather than after loading the model.
    """
    workdir = pathlib.Path(ae_workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(
            f"autoencoder workdir {workdir} does not exist: train one with python -m launch.train_autoencoder"
        )
    spec = workdir / "export" / "spec.json"
    if not spec.is_file():
        raise FileNotFoundError(
            f"{workdir} has no exported autoencoder ({spec} not found): "
            "python -m launch.train_autoencoder writes it at the end of training"
        )
    return json.loads(spec.read_text())


def load_autoencoder(
    ae_workdir: str | os.PathLike,
) -> tuple[Callable[[ArrayLike], jax.Array], Callable[[ArrayLike], jax.Array], dict[str, Any]]:
    """``(encode_fn, decode_fn, spec)`` from ``ae_workdir/export``.

    Cost: ``autoencoder_io`` builds each half's parameter template with a full
    ``init`` (seconds for the paper's model on CPU).
    """
    spec = export_spec(ae_workdir)
    export = pathlib.Path(ae_workdir) / "export"
    encode_fn, _ = autoencoder_io.load_encoder(export)
    decode_fn, _ = autoencoder_io.load_decoder(export)
    return encode_fn, decode_fn, spec


def read_video(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None,
    max_frames: int | None = None,
    frame_stride: int = 1,
) -> np.ndarray:
    """uint8 RGB frames [N, H, W, 3] resized to ``size``; errors name the file."""
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    indices = None
    if max_frames is not None or frame_stride > 1:
        stop = max_frames * frame_stride if max_frames is not None else 10**9
        indices = range(0, stop, frame_stride)
    frames = [frame for _, frame in video_io.read_frames(path, indices, size=size)]
    if not frames:
        raise errors.VideoReadError(path, "no frame could be decoded (empty, truncated or corrupt)")
    return np.stack(frames)


def training_privacy(ae_workdir: str | os.PathLike) -> dict[str, Any] | None:
    """The trainer's privacy fields from ``metrics.json``, or None when there is no such file."""
    path = pathlib.Path(ae_workdir) / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    out = {k: metrics[k] for k in TRAINING_PRIVACY_KEYS if k in metrics}
    out["source"] = str(path)
    return out


# --- The camera -> server path --------------------------------------------------------------------


def make_path(
    encode_fn: Callable[[jax.Array], jax.Array],
    decode_fn: Callable[[jax.Array], ArrayLike],
    ldp_config: latent_ldp.LatentLdpConfig,
    key: jax.Array,
) -> Callable[[npt.ArrayLike], tuple[np.ndarray, np.ndarray]]:
    """``reconstruct(frames float [B, H, W, 3]) -> (reconstructions, latent L2 norms)``.

    Each call folds a counter into ``key``, so no two batches share noise.
    """
    calls = [0]

    def reconstruct(frames):
        latent = encode_fn(jnp.asarray(frames, jnp.float32))
        norms = jnp.sqrt(jnp.sum(jnp.square(latent), axis=tuple(range(1, latent.ndim))))
        released = latent_ldp.privatize_latent(latent, jax.random.fold_in(key, calls[0]), ldp_config)
        calls[0] += 1
        return np.asarray(decode_fn(released)), np.asarray(norms)

    return reconstruct


def reconstruct_all(
    reconstruct: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], frames: np.ndarray, *, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(reconstructions float32, latent norms)`` for frames [N, H, W, 3], uint8 or float in [0, 1].

    The last batch is padded to ``batch_size`` (and the padding dropped), so
    one compiled shape serves every call: a recompile of the paper's model
    costs seconds on CPU.
    """
    recon, norms = [], []
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size]
        batch = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32)
        n = len(batch)
        if n < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - n, *batch.shape[1:]), np.float32)])
        r, m = reconstruct(batch)
        recon.append(r[:n])
        norms.append(m[:n])
    return np.concatenate(recon), np.concatenate(norms)


# --- Picture --------------------------------------------------------------------------------------


def side_by_side(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    counts: Mapping[str, faces.FaceCounts],
    *,
    max_rows: int = 4,
    min_width: int = 320,
) -> np.ndarray:
    """Rows of original | reconstruction with every backend's boxes, the frames with most faces first."""
    headline = next(iter(counts.values()))
    order = sorted(range(len(originals)), key=lambda i: (-int(headline.original_counts[i]), i))[:max_rows]
    h, w = originals.shape[1:3]
    scale = max(1, math.ceil(min_width / w))
    gap, label_h = 4, 14
    rows = []
    for i in order:
        pair = []
        for frames, boxes_of in ((originals, "original_boxes"), (reconstructions, "reconstructed_boxes")):
            image = cv2.resize(
                faces.to_uint8(frames[i]), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST
            )
            for name, c in counts.items():
                color = faces.BOX_COLORS.get(name, (255, 255, 255))
                image = faces.draw_boxes(image, getattr(c, boxes_of)[i] * scale, color=color, thickness=2)
            pair.append(image)
        row = np.full((label_h + h * scale, 2 * w * scale + gap, 3), 255, np.uint8)
        row[label_h:, : w * scale] = pair[0]
        row[label_h:, w * scale + gap :] = pair[1]
        text = f"frame {i}: " + ", ".join(
            f"{n} {int(c.original_counts[i])}->{int(c.reconstructed_counts[i])}" for n, c in counts.items()
        )
        cv2.putText(row, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(row)
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([x for row in rows for x in (row, spacer)][:-1])


# --- JSON -----------------------------------------------------------------------------------------
