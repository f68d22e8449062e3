"""What a server learns through one trained autoencoder: faces, re-identification, membership.

``evaluate(...)`` measures an exported autoencoder (``W/export``: the camera
and server halves, so exactly what a server would see) on the splits it was
trained with, once without latent local DP and once per LDP level:

- image quality: MSE / PSNR / SSIM on the test frames (without LDP the
  trainer's own test numbers are passed in and kept);
- faces: LFW crops and the astronaut's face pasted on test frames
  (``paste_faces``), detected on originals and reconstructions; rate =
  reconstructed / original (``evaluation.faces``);
- re-identification: the 101 LFW + astronaut identities sent through the
  autoencoder at its resolution, named by nearest neighbour (HOG by default);
  top-1 against chance (``evaluation.reidentification``);
- membership inference: the loss-threshold attack, training frames against
  held-out (test + validation) frames; AUC and TPR at 1% FPR
  (``evaluation.membership``). The calibrated attack needs a reference model
  trained on disjoint data, one more training run: not run here.

Cost at 120x160 on 2 CPU cores: seconds (101 re-id crops in 9 frames, 2 x
``face_frames`` Haar detections, 2 x ``mia_frames`` reconstructions), plus one
pass over the test split per LDP level.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from skimage import data as skimage_data

from ppvad_jax.data import contact_sheet, public_images
from ppvad_jax.evaluation import faces, image_quality, membership, privacy_report, reidentification
from ppvad_jax.privacy import latent_ldp

if TYPE_CHECKING:  # annotations only: no start-up cost
    import ml_collections

    from ppvad_jax.data import autoencoder_data


def astronaut_face_rgb(margin: int = 16) -> np.ndarray:
    """The astronaut's face in colour with a margin of background (the cascades need some border)."""
    x, y, w, h = reidentification.ASTRONAUT_FACE
    image = skimage_data.astronaut()
    return image[max(0, y - margin) : y + h + margin, max(0, x - margin) : x + w + margin]


def paste_faces(frames: npt.ArrayLike, *, fraction: float, seed: int) -> np.ndarray:
    """A copy of frames [N, H, W, 3] uint8 with one real face each, at a seeded position.

    Faces are LFW crops (grey, repeated on the three channels) and, every fifth
    frame, the astronaut in colour, of side ``fraction`` x the frame's short
    side. Measured (scratch script, flat noisy backgrounds, 20 frames): Haar at
    upscale 2 finds 19 of 20 at 48x64, 120x160 and 240x320 with fraction 0.5.
    """
    frames = np.array(frames, np.uint8)
    n, height, width = frames.shape[:3]
    size = max(8, int(min(height, width) * fraction))
    lfw = reidentification.lfw_faces()
    astronaut = cv2.resize(astronaut_face_rgb(), (size, size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    for i in range(n):
        if i % 5 == 4:
            face = astronaut
        else:
            grey = cv2.resize(lfw[i % len(lfw)], (size, size), interpolation=cv2.INTER_LINEAR)
            face = np.repeat(np.clip(grey * 255, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
        y = rng.integers(0, height - size + 1)
        x = rng.integers(0, width - size + 1)
        frames[i, y : y + size, x : x + size] = face
    return frames


def _sample(records, count, rng):
    records = np.asarray(records)
    return np.sort(rng.choice(records, size=min(count, len(records)), replace=False))


def sample_key(level: float | None) -> str:
    """The ``recon_samples.npz`` key of an LDP level's reconstructions (None: no LDP)."""
    return "recon" if level is None else f"recon_ldp{level:g}"


_QUALITY_KEYS = ("mse", "psnr", "ssim")


@dataclasses.dataclass(frozen=True)
class _AttackFrames:
    """The frames and identities every level is attacked with, fetched once."""

    test_records: np.ndarray  # every test frame's record (the LDP levels' image quality)
    members: np.ndarray  # sampled training frames, uint8
    nonmembers: np.ndarray  # sampled held-out (test + validation) frames, uint8
    face_frames: np.ndarray  # test frames with a real face pasted on each
    grid_originals: np.ndarray  # the test frames of the reconstruction grid
    identities: reidentification.IdentitySet


@dataclasses.dataclass(frozen=True)
class _Attacks:
    """How the attacks run: face detectors (the first is the headline), re-id feature, batch."""

    backends: tuple[str, ...]
    face_config: faces.FaceDetectorConfig
    reid_feature: str
    frame_shape: tuple[int, ...]
    batch_size: int


@dataclasses.dataclass(frozen=True)
class _LdpBound:
    """The latent-LDP bound C published with every LDP epsilon, and where it came from."""

    l2_bound: float
    configured: bool  # False: the median latent norm of public images
    public_median: float


def _attack_frames(splits, source, settings) -> _AttackFrames:
    """Members, non-members, face frames and grid frames from the run's splits (seeded)."""
    rng = np.random.default_rng(settings.seed)
    test_records = np.concatenate(splits["test"].records)
    heldout = np.concatenate([test_records, *splits["validation"].records])
    members = source.fetch(_sample(np.concatenate(splits["train"].records), settings.mia_frames, rng))
    nonmembers = source.fetch(_sample(heldout, settings.mia_frames, rng))
    face_frames = paste_faces(
        source.fetch(test_records[contact_sheet.pick_evenly(len(test_records), settings.face_frames)]),
        fraction=settings.face_fraction,
        seed=settings.seed,
    )
    grid_originals = source.fetch(
        test_records[contact_sheet.pick_evenly(len(test_records), settings.grid_frames)]
    )
    identities = reidentification.identity_set(seed=settings.seed)
    return _AttackFrames(test_records, members, nonmembers, face_frames, grid_originals, identities)


def _ldp_quality(reconstruct, source, frames: _AttackFrames) -> dict:
    """Image quality (``_QUALITY_KEYS`` among others) through ``reconstruct`` over every test frame."""
    test_frames = source.fetch(frames.test_records)
    return image_quality.summarize(
        image_quality.per_frame(
            jnp.asarray(test_frames, jnp.float32) / 255.0, jnp.asarray(reconstruct(test_frames))
        )
    )


def _attack_row(reconstruct, frames: _AttackFrames, attacks: _Attacks) -> dict:
    """Faces, re-identification and membership inference through ``reconstruct``, in that order
    (an LDP path draws fresh noise per call: the order fixes which noise each attack sees)."""
    counts = faces.count_faces(
        frames.face_frames,
        reconstruct(frames.face_frames),
        backends=attacks.backends,
        config=attacks.face_config,
    )
    found = counts[attacks.backends[0]].summary()
    identities = frames.identities
    reid = reidentification.attack(
        identities,
        reidentification.crops_through(reconstruct, identities.probes, attacks.frame_shape),
        feature=attacks.reid_feature,
    )
    mia = membership.membership_inference(
        reconstruct, frames.members, frames.nonmembers, batch_size=attacks.batch_size
    )["loss_threshold"]
    return {
        "face_detection_rate": found["detection_rate"],
        "face_matched_rate": found["matched_detection_rate"],
        "faces_original": found["faces_original"],
        "faces_reconstructed": found["faces_reconstructed"],
        "face_backend": attacks.backends[0],
        "reid_top1": reid["top1"],
        "reid_top5": reid["top5"],
        "reid_chance_top1": reid["chance_top1"],
        "mia_auc": mia["auc"],
        "mia_tpr_at_1pct_fpr": mia["tpr_at_1pct_fpr"],
        "mia_members": mia["members"],
        "mia_nonmembers": mia["nonmembers"],
    }


def evaluate(
    ae_workdir: str | os.PathLike,
    *,
    splits: Mapping[str, autoencoder_data.Units],
    source: autoencoder_data.FrameSource,
    trainer_quality: Mapping[str, Any],
    settings: ml_collections.ConfigDict,
    ldp_levels: tuple[float, ...] = (),
    ldp_l2_bound: float = 0.0,
    ldp_delta: float = 1e-5,
    ldp_nonnegative: bool = True,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Measures ``ae_workdir/export`` (module docstring); one row per LDP level, None (no LDP) first.

    Args:
      splits: ``autoencoder_data.split_units`` of the run (train / validation / test units).
      source: the ``autoencoder_data.FrameSource`` those units index.
      trainer_quality: ``{"mse", "psnr", "ssim"}`` the trainer measured on every test frame.
      settings: face_frames, face_fraction, face_upscale, face_backends (names; the first is the
        headline), reid_feature, mia_frames, grid_frames, batch_size, seed (attributes).
      ldp_levels: latent-LDP noise multipliers; ldp_l2_bound: their bound C, 0 = the median latent
        norm of public images (``public_latent_norm``), never of the private frames.

    Returns:
      ``{"levels": [row per level], "reference": ..., "latent_l2_bound": ...}`` and
      ``samples``: ``{"originals", "recon", "recon_ldp<sigma>"...}`` uint8 frames for a grid.
    """
    frames = _attack_frames(splits, source, settings)
    face_config = faces.FaceDetectorConfig(upscale=settings.face_upscale)
    encode_fn, decode_fn, spec = privacy_report.load_autoencoder(ae_workdir)
    batch_size = settings.batch_size
    frame_shape = tuple(spec["frame_shape"])
    backends = tuple(settings.face_backends)
    attacks = _Attacks(backends, face_config, settings.reid_feature, frame_shape, batch_size)
    base_path = privacy_report.make_path(
        encode_fn, decode_fn, latent_ldp.LatentLdpConfig(), jax.random.key(0)
    )
    public_median = public_latent_norm(base_path, frame_shape, batch_size=batch_size, seed=settings.seed)
    bound = _LdpBound(ldp_l2_bound or public_median, bool(ldp_l2_bound), public_median)
    ldp_config = functools.partial(
        latent_ldp.LatentLdpConfig,
        enabled=True,
        l2_bound=bound.l2_bound,
        delta=ldp_delta,
        nonnegative=ldp_nonnegative,
    )
    levels, samples = [], {"originals": frames.grid_originals}
    for i, level in enumerate([None, *[float(s) for s in ldp_levels]]):
        ldp, path = None, base_path
        if level is not None:
            ldp = ldp_config(noise_multiplier=level)
            level_key = jax.random.fold_in(jax.random.key(settings.seed), i)
            path = privacy_report.make_path(encode_fn, decode_fn, ldp, level_key)
        reconstruct = functools.partial(_reconstruct, path, batch_size=batch_size)
        quality = trainer_quality if ldp is None else _ldp_quality(reconstruct, source, frames)
        levels.append(_level_row(level, ldp, quality, _attack_row(reconstruct, frames, attacks)))
        samples[sample_key(level)] = (reconstruct(frames.grid_originals) * 255).round().astype(np.uint8)
    return _result(levels, frames.identities, settings, bound), samples


def _level_row(level, ldp, quality, attack_columns) -> dict:
    """One level's row: its noise, image quality, LDP guarantee (LDP levels only), attacks."""
    row = {"latent_ldp_noise": level, **{k: quality[k] for k in _QUALITY_KEYS}}
    if ldp is not None:
        row.update(
            latent_ldp_epsilon=latent_ldp.epsilon(ldp)["epsilon_pld"],
            latent_ldp_delta=ldp.delta,
            latent_ldp_l2_bound=ldp.l2_bound,
        )
    return {**row, **attack_columns}


def _reconstruct(path, frames, *, batch_size):
    return privacy_report.reconstruct_all(path, frames, batch_size=batch_size)[0]


def _result(levels, identities, settings, bound: _LdpBound) -> dict:
    """The result dict: the levels, the clear-crop re-id reference and where the bound came from."""
    clear = reidentification.attack(identities, identities.probes, feature=settings.reid_feature)
    return {
        "levels": levels,
        "reference": {"reid_top1_clear_crops": clear["top1"], "reid_chance_top1": clear["chance_top1"]},
        "latent_l2_bound": bound.l2_bound,
        "latent_l2_bound_source": "configured" if bound.configured else PUBLIC_BOUND_SOURCE,
        "public_latent_l2_norm_median": bound.public_median,
    }


PUBLIC_BOUND_SOURCE = "median latent norm of 64 crops of scikit-image's public sample images"


def public_latent_norm(
    path: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    frame_shape: Sequence[int],
    *,
    batch_size: int,
    seed: int,
) -> float:
    """Median latent L2 norm of public images: the default LDP bound.

    The bound C is published with every LDP epsilon. A statistic of the private training
    frames (their median norm, as it once was) would leak about them un-noised; crops of
    public images cost nothing and land near the frames' scale (both are natural images).
    """
    crops = public_images.random_crops(np.random.default_rng(seed), 64, *frame_shape[:2])
    _, norms = privacy_report.reconstruct_all(path, crops, batch_size=batch_size)
    return float(np.median(norms))
