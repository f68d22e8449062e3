"""Export and load the two halves of the autoencoder separately.

The camera gets ``encoder.msgpack``, the server ``decoder.msgpack``; ``spec.json``
says the input and latent shapes. Neither side needs the other's weights.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.typing import ArrayLike

from ppvad_jax.models import autoencoder


def random_params(
    *, height: int, width: int, features: Sequence[int] = autoencoder.ENCODER_FEATURES, seed: int = 0
) -> dict[str, Any]:
    """Untrained parameters (LeCun-normal kernels, zero biases) for throughput tests and fixtures.

    Shapes by abstract evaluation, values from numpy: flax's ``init`` on XLA CPU compiles every
    initializer (about a minute on a 2-core machine); this takes milliseconds. Its
    reconstructions are noise: never serve or evaluate it as a model.
    """
    model = autoencoder.Autoencoder(features=tuple(features))
    shapes = jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, height, width, 3), np.float32))
    rng = np.random.default_rng(seed)

    def init(path, leaf):
        if path[-1].key == "bias":
            return np.zeros(leaf.shape, np.float32)
        fan_in = int(np.prod(leaf.shape[:-1]))  # HWIO kernels
        return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(init, shapes["params"])


def export(
    out_dir: str | os.PathLike,
    params: Mapping[str, Any],
    *,
    height: int,
    width: int,
    features: Sequence[int] = autoencoder.ENCODER_FEATURES,
    extra: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Writes ``encoder.msgpack``, ``decoder.msgpack`` and ``spec.json`` under ``out_dir``.

    ``extra``: more ``spec.json`` fields, e.g. what the model was trained on.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = jax.device_get(params)
    for half in ("encoder", "decoder"):
        tmp = out_dir / f"{half}.msgpack.partial"
        tmp.write_bytes(flax.serialization.to_bytes(params[half]))
        tmp.replace(out_dir / f"{half}.msgpack")
    down = autoencoder.DOWNSAMPLE
    spec = {
        "frame_shape": [height, width, 3],
        "latent_shape": [height // down, width // down, features[-1]],
        "encoder_features": list(features),
        "frame_range": "float32 in [0, 1] (uint8 / 255)",
        **(extra or {}),
    }
    (out_dir / "spec.json").write_text(json.dumps(spec, indent=2))
    return out_dir


def _spec(export_dir):
    path = pathlib.Path(export_dir) / "spec.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: train an autoencoder (python -m launch.train_autoencoder)"
        )
    spec = json.loads(path.read_text())
    if "untrained" in spec:
        logging.warning("autoencoder %s is UNTRAINED (%s)", export_dir, spec["untrained"])
    return spec


def _load(path, module, example):
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: train an autoencoder (python -m launch.train_autoencoder)"
        )
    # Only the layout is needed: eval_shape costs 0.35 s where running init took tens of seconds.
    template = jax.eval_shape(lambda: module.init(jax.random.key(0), example))["params"]
    return jax.device_put(flax.serialization.from_bytes(template, path.read_bytes()))


def load_encoder(export_dir: str | os.PathLike) -> tuple[Callable[[ArrayLike], jax.Array], dict[str, Any]]:
    """``(encode_fn, spec)``: ``encode_fn(frames float [N, H, W, 3]) -> latent``, jitted."""
    spec = _spec(export_dir)
    module = autoencoder.Encoder(features=tuple(spec["encoder_features"]))
    params = _load(pathlib.Path(export_dir) / "encoder.msgpack", module, jnp.zeros((1, *spec["frame_shape"])))
    return jax.jit(lambda frames: module.apply({"params": params}, frames)), spec


def load_decoder(export_dir: str | os.PathLike) -> tuple[Callable[[ArrayLike], jax.Array], dict[str, Any]]:
    """``(decode_fn, spec)``: ``decode_fn(latent [N, h, w, 16]) -> frames in [0, 1]``, jitted."""
    spec = _spec(export_dir)
    module = autoencoder.Decoder(features=tuple(reversed(spec["encoder_features"])))
    params = _load(
        pathlib.Path(export_dir) / "decoder.msgpack", module, jnp.zeros((1, *spec["latent_shape"]))
    )
    return jax.jit(lambda latent: module.apply({"params": params}, latent)), spec


def load_params(export_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, spec)``: both halves as one ``{"encoder": ..., "decoder": ...}`` tree, to train on from."""
    spec = _spec(export_dir)
    features = tuple(spec["encoder_features"])
    encoder = _load(
        pathlib.Path(export_dir) / "encoder.msgpack",
        autoencoder.Encoder(features=features),
        jnp.zeros((1, *spec["frame_shape"])),
    )
    decoder = _load(
        pathlib.Path(export_dir) / "decoder.msgpack",
        autoencoder.Decoder(features=tuple(reversed(features))),
        jnp.zeros((1, *spec["latent_shape"])),
    )
    return {"encoder": encoder, "decoder": decoder}, spec
