"""Re-identification attack: can an attacker name the person in a reconstructed face crop?

Threat model: the attacker holds original face crops of N identities (a
"gallery", e.g. photos of a building's staff) and sees the server's
reconstruction of a face. It names the identity whose gallery crop is nearest
in a feature space. Reported: top-1 and top-5 accuracy against chance (1/N and
min(5, N)/N). Features:

- ``hog``: scikit-image HOG (9 orientations, 5x5-pixel cells, 2x2 blocks on a
  25x25 crop: 576 numbers). Tolerates small shifts and contrast changes.
- ``pixels``: the crop itself, each crop standardised (zero mean, unit std),
  so a brightness or contrast change of the decoder does not decide alone.
- ``pca``: standardised pixels projected on the gallery's first principal
  components (eigenfaces, Turk and Pentland 1991).

Distances are Euclidean between L2-normalised features; an identity's
distance is its nearest gallery crop's. Ties (e.g. constant reconstructions,
whose features are all zero) are broken uniformly at random in expectation:
with s identities strictly nearer than the true one and t others tied with it,
the probe counts P(rank <= k) = clip((k - s) / (t + 1), 0, 1), so a useless
reconstruction scores chance, neither 0 nor 1. Nearly constant reconstructions
can score *below* chance: every probe lands on the same few "hub" gallery
crops, and only those identities' probes could be right. Read a result
against chance, not against 0.

The data (``identity_set``): real faces, no download. scikit-image's
``lfw_subset`` holds 200 grey 25x25 crops: the first 100 are LFW faces and the
last 100 are background patches (its docstring; checked: OpenCV's Haar cascade
finds a face in 95 of the first 100 at 2x with a border, and in none of the
last 100). It carries no names, and LFW repeats some people, so **identities
are the 100 distinct crops**, not distinct people; the astronaut's face
(``skimage.data.astronaut``) is a 101st. The gallery holds
``gallery_views`` augmented copies of each crop (shifts of up to 1 pixel,
Gaussian noise of std 0.02) and the probe is the crop itself, as the camera
sees it. Limitation: gallery and probe come from one photo, so this is easier
for the attacker than matching across photos (pose, light, age differ); an
attack that fails here would fail there, but success here does not prove
success across photos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from skimage import data as skimage_data
from skimage import feature as skimage_feature

FEATURES = ("hog", "pixels", "pca")
CROP_SIZE = 25  # lfw_subset's crops are 25x25
# The astronaut's face in skimage's 512x512 astronaut (OpenCV's Haar box, x y w h).
ASTRONAUT_FACE = (177, 66, 95, 95)


# --- Data -----------------------------------------------------------------------------------------


def lfw_faces() -> np.ndarray:
    """The 100 face crops of scikit-image's ``lfw_subset``, float32 [100, 25, 25] in [0, 1]."""
    return skimage_data.lfw_subset()[:100].astype(np.float32)


def astronaut_face(size: int = CROP_SIZE) -> np.ndarray:
    """The astronaut's face, grey, float32 [size, size] in [0, 1]."""
    x, y, w, h = ASTRONAUT_FACE
    crop = cv2.cvtColor(skimage_data.astronaut()[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def augment(
    crops: npt.ArrayLike, rng: np.random.Generator, *, max_shift: int = 1, noise_std: float = 0.02
) -> np.ndarray:
    """Shifted (edge-padded, up to ``max_shift`` pixels each way) and noisy copies of crops [N, h, w]."""
    crops = np.asarray(crops, np.float32)
    n, h, w = crops.shape
    padded = np.pad(crops, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)), mode="edge")
    dy, dx = rng.integers(0, 2 * max_shift + 1, (2, n))
    out = np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return np.clip(out + rng.normal(0, noise_std, out.shape), 0, 1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class IdentitySet:
    gallery: np.ndarray  # [N * views, h, w] float32 in [0, 1]
    gallery_ids: np.ndarray  # [N * views] int
    probes: np.ndarray  # [N, h, w]: what the camera sees, one per identity
    probe_ids: np.ndarray  # [N]
    names: tuple  # identity i's name

    @property
    def num_identities(self) -> int:
        return len(self.names)


def identity_set(*, gallery_views: int = 3, include_astronaut: bool = True, seed: int = 0) -> IdentitySet:
    """The LFW (and astronaut) identities of the module docstring, gallery and probes."""
    probes = lfw_faces()
    names = tuple(f"lfw_subset[{i}]" for i in range(len(probes)))
    if include_astronaut:
        probes = np.concatenate([probes, astronaut_face()[None]])
        names += ("astronaut",)
    rng = np.random.default_rng(seed)
    ids = np.arange(len(probes))
    gallery = np.concatenate([augment(probes, rng) for _ in range(gallery_views)])
    return IdentitySet(gallery, np.tile(ids, gallery_views), probes, ids, names)


# --- Features -------------------------------------------------------------------------------------


def _standardise(crops):
    flat = np.asarray(crops, np.float64).reshape(len(crops), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return flat / np.maximum(flat.std(axis=1, keepdims=True), 1e-6)


def _normalise(features):
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def fit_pca(gallery: npt.ArrayLike, *, num_components: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, basis [k, d])`` of the standardised gallery crops (eigenfaces)."""
    flat = _standardise(gallery)
    mean = flat.mean(axis=0)
    centred = flat - mean
    # Eigenvectors of the [G, G] Gram matrix rather than an SVD of [G, d]: the same basis, and a
    # 303x303 eigh stays in milliseconds where a threaded SVD stalls on a loaded 2-core machine.
    eigenvalues, u = np.linalg.eigh(centred @ centred.T)
    order = np.argsort(eigenvalues)[::-1][:num_components]
    order = order[eigenvalues[order] > 1e-9 * max(eigenvalues.max(), 1e-30)]
    basis = (centred.T @ u[:, order]) / np.sqrt(eigenvalues[order])
    return mean, basis.T


def features(
    crops: npt.ArrayLike, kind: str, *, pca: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """L2-normalised features [N, D] of grey crops [N, h, w] in [0, 1]."""
    crops = np.asarray(crops, np.float32)
    if crops.ndim != 3:
        raise ValueError(f"expected grey crops [N, h, w], got shape {crops.shape}")
    if kind == "hog":
        feats = np.stack(
            [
                skimage_feature.hog(c, orientations=9, pixels_per_cell=(5, 5), cells_per_block=(2, 2))
                for c in crops
            ]
        )
    elif kind == "pixels":
        feats = _standardise(crops)
    elif kind == "pca":
        if pca is None:
            raise ValueError("kind='pca' needs pca=fit_pca(gallery)")
        mean, basis = pca
        feats = (_standardise(crops) - mean) @ basis.T
    else:
        raise ValueError(f"unknown feature {kind!r}; one of {FEATURES}")
    return _normalise(feats.astype(np.float64))


# --- Attack ---------------------------------------------------------------------------------------


def topk_accuracy(distances: npt.ArrayLike, true_index: npt.ArrayLike, ks: Iterable[int]) -> dict[int, float]:
    """Mean over probes of P(true identity within the k nearest), ties broken at random in expectation.

    Args:
      distances: [P, N] probe-to-identity distances.
      true_index: [P] column of each probe's identity.
    """
    distances = np.asarray(distances, np.float64)
    true_d = distances[np.arange(len(distances)), true_index][:, None]
    nearer = (distances < true_d).sum(axis=1)
    tied = (distances == true_d).sum(axis=1) - 1
    return {k: float(np.mean(np.clip((k - nearer) / (tied + 1), 0, 1))) for k in ks}


def attack(
    identities: IdentitySet,
    reconstructed_probes: npt.ArrayLike,
    *,
    feature: str = "hog",
    num_pca_components: int = 32,
) -> dict[str, Any]:
    """Nearest-neighbour re-identification of reconstructed probes against the original gallery.

    Args:
      identities: an ``IdentitySet``.
      reconstructed_probes: [N, h, w] grey crops in [0, 1], the server's view of
        ``identities.probes`` (pass the probes themselves for the no-privacy bound).
      feature: "hog", "pixels" or "pca".

    Returns:
      ``{"top1", "top5", "chance_top1", "chance_top5", "num_identities", "num_probes", "feature"}``.
    """
    probes = np.asarray(reconstructed_probes, np.float32)
    if probes.shape != identities.probes.shape:
        raise ValueError(f"expected reconstructed probes {identities.probes.shape}, got {probes.shape}")
    pca = fit_pca(identities.gallery, num_components=num_pca_components) if feature == "pca" else None
    gallery_f = features(identities.gallery, feature, pca=pca)
    probe_f = features(probes, feature, pca=pca)
    # [P, G] distances, then the nearest gallery crop of each identity: [P, N].
    d = np.sqrt(np.maximum(2.0 - 2.0 * probe_f @ gallery_f.T, 0.0))
    n = identities.num_identities
    per_identity = np.full((len(probes), n), np.inf)
    for identity in range(n):
        per_identity[:, identity] = d[:, identities.gallery_ids == identity].min(axis=1)
    acc = topk_accuracy(per_identity, identities.probe_ids, (1, 5))
    return {
        "top1": acc[1],
        "top5": acc[5],
        "chance_top1": 1.0 / n,
        "chance_top5": min(5, n) / n,
        "num_identities": n,
        "num_probes": len(probes),
        "feature": feature,
    }


# --- Through an autoencoder -----------------------------------------------------------------------


def crops_through(
    reconstruct_fn: Callable[[np.ndarray], npt.ArrayLike],
    crops: npt.ArrayLike,
    frame_shape: Sequence[int],
    *,
    face_size: int = CROP_SIZE,
    margin: int = 8,
    background: float = 0.5,
) -> np.ndarray:
    """Passes grey crops through a frame-to-frame function by tiling them into frames.

    Each crop (resized to ``face_size``) is pasted on a flat grey frame of
    ``frame_shape`` [H, W, 3], the frames go through ``reconstruct_fn`` (float
    [B, H, W, 3] in [0, 1] -> same), and the crops are cut back out and resized
    to their size (grey = channel mean). A face at ``face_size`` pixels in a
    frame of the autoencoder's size is what the camera would send.

    Returns:
      float32 [N, h, w] in [0, 1].
    """
    crops = np.asarray(crops, np.float32)
    n, h, w = crops.shape
    height, width = frame_shape[:2]
    cell = face_size + margin
    rows, cols = (height - margin) // cell, (width - margin) // cell
    if rows < 1 or cols < 1:
        raise ValueError(f"a {height}x{width} frame cannot hold a {face_size}-pixel face with a margin")
    per_frame = rows * cols
    num_frames = -(-n // per_frame)
    frames = np.full((num_frames, height, width, 3), background, np.float32)
    resized = [cv2.resize(c, (face_size, face_size), interpolation=cv2.INTER_LINEAR) for c in crops]
    slots = []
    for i, crop in enumerate(resized):
        f, slot = divmod(i, per_frame)
        r, c = divmod(slot, cols)
        y, x = margin + r * cell, margin + c * cell
        frames[f, y : y + face_size, x : x + face_size] = np.clip(crop, 0, 1)[..., None]
        slots.append((f, y, x))
    recon = np.asarray(reconstruct_fn(frames), np.float32)
    if recon.shape != frames.shape:
        raise ValueError(f"reconstruct_fn returned shape {recon.shape} for frames {frames.shape}")
    out = []
    for f, y, x in slots:
        grey = recon[f, y : y + face_size, x : x + face_size].mean(axis=-1)
        out.append(
            cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA if face_size > w else cv2.INTER_LINEAR)
        )
    return np.clip(np.stack(out), 0, 1).astype(np.float32)
