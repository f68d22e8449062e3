"""The sweep's points: ``optimizers`` x ``noise_multipliers``, adam once, checked before anything runs."""

import dataclasses
import hashlib
import math

import ml_collections

from ppvad_jax.evaluation import faces, reidentification
from ppvad_jax.training import optimizers


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    optimizer: str
    noise_multiplier: float | None  # None: not private (adam)
    config: ml_collections.ConfigDict  # this point's autoencoder config


def names(values):
    """A list of names from a config tuple; ``--config.x=a,b`` arrives as ``("a,b",)``."""
    out = []
    for value in values:
        out += [v.strip() for v in str(value).split(",") if v.strip()]
    return list(dict.fromkeys(out))


def _check_optimizers(optimizer_names):
    if not optimizer_names:
        raise ValueError("config.optimizers is empty: name at least one of adam, dpsgd, dpadam, dpadagrad")
    for name in optimizer_names:
        optimizers.is_private(name)  # raises on an unknown optimizer


def _check_settings(config, optimizer_names, sigmas):
    """Clear errors for bad noise levels or privacy settings, before anything is planned or trained."""
    bad = [s for s in sigmas if not math.isfinite(s) or s < 0]
    if bad:
        raise ValueError(f"noise multipliers must be finite and >= 0, got {bad}")
    if any(optimizers.is_private(n) for n in optimizer_names) and not sigmas:
        raise ValueError("config.noise_multipliers is empty but the grid has DP optimizers")
    for level in config.latent_ldp.noise_multipliers:
        if not math.isfinite(float(level)) or float(level) < 0:
            raise ValueError(f"latent_ldp.noise_multipliers must be finite and >= 0, got {level}")
    backends = names(config.privacy.face_backends)
    unknown = set(backends) - set(faces.available_backends())
    if not backends or unknown:
        raise ValueError(f"privacy.face_backends {backends}: use some of {faces.available_backends()}")
    if config.privacy.reid_feature not in reidentification.FEATURES:
        raise ValueError(f"privacy.reid_feature must be one of {reidentification.FEATURES}")


def parse_shard(text):
    """``"I/N"`` -> ``(I, N)`` with 0 <= I < N; ``""`` -> None (every point)."""
    if not text:
        return None
    index, _, count = str(text).partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = -1
    if not 0 <= index < count:
        raise ValueError(f"config.shard must be I/N with 0 <= I < N (e.g. 0/3), got {text!r}")
    return index, count


def shard_of(name, count):
    """The shard a point belongs to: a hash of its name, stable across runs, machines and grids."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def grid(config):
    """The sweep's points, adam once; clear errors for a bad grid (before anything runs)."""
    optimizer_names = names(config.optimizers)
    _check_optimizers(optimizer_names)
    sigmas = [float(s) for s in config.noise_multipliers]
    _check_settings(config, optimizer_names, sigmas)
    points = {}
    for optimizer in optimizer_names:
        for sigma in sigmas if optimizers.is_private(optimizer) else [None]:
            ae = ml_collections.ConfigDict(config.autoencoder.to_dict())
            ae.optimizer = optimizer
            name = optimizer
            if sigma is not None:
                ae.dp.noise_multiplier = sigma
                name = f"{optimizer}_nm{sigma:g}"
            points.setdefault(name, Point(name, optimizer, sigma, ae))
    return list(points.values())
