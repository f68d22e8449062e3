"""Darknet cfg + .weights -> a self-contained checkpoint directory, and back to a model.

Directory layout:
- ``params.msgpack``: the Flax variables (``flax.serialization.msgpack_serialize``), layout
  in ``network``'s docstring;
- ``spec.json``: the cfg text, input size, class names (and the names file's text), the
  batch-norm epsilon, and each source file's name and sha256, so a checkpoint says what it
  was made from and needs nothing else to load.

Converting YOLOv4 (246 MB of weights) takes a few seconds: reading, transposing kernels to
HWIO, hashing, writing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any

import jax
import numpy as np
from flax import serialization

from ppvad_jax.models.darknet import cfg, network, weights

SPEC_FILE = "spec.json"
PARAMS_FILE = "params.msgpack"
FORMAT = "ppvad-darknet-v1"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: pathlib.Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_class_names(text: str) -> list[str]:
    """One class name per non-empty line (darknet's ``.names``)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclasses.dataclass(frozen=True)
class _Sources:
    """The three darknet files of a conversion, read and checked against each other."""

    cfg_path: pathlib.Path
    weights_path: pathlib.Path
    names_path: pathlib.Path
    cfg_bytes: bytes
    config: cfg.DarknetConfig
    header: weights.Header
    layers: dict[int, weights.ConvWeights]
    names_text: str
    class_names: list[str]


def _read_sources(cfg_path: pathlib.Path, weights_path: pathlib.Path, names_path: pathlib.Path) -> _Sources:
    """Reads the cfg, its weights and the class names; the names must match every yolo layer."""
    if not names_path.is_file():
        raise FileNotFoundError(f"{names_path}: class names file not found (pass names_path)")
    cfg_bytes = cfg_path.read_bytes()
    config = cfg.parse_cfg(cfg_bytes.decode(), str(cfg_path))
    header, layers = weights.read_weights(weights_path, config)
    names_text = names_path.read_text()
    class_names = read_class_names(names_text)
    classes = {layer.classes for layer in config.yolo_layers}
    if classes != {len(class_names)}:
        raise ValueError(
            f"{names_path}: {len(class_names)} names, but the yolo layers of {cfg_path} have {classes}"
        )
    return _Sources(
        cfg_path, weights_path, names_path, cfg_bytes, config, header, layers, names_text, class_names
    )


def _spec(sources: _Sources, params_bytes: bytes, bn_epsilon: float) -> dict:
    """``spec.json``'s content: input size, class names, cfg text and every file's sha256."""
    net, header = sources.config.net, sources.header
    return {
        "format": FORMAT,
        "input_height": net.height,
        "input_width": net.width,
        "input_channels": net.channels,
        "input_convention": "NHWC float32 RGB in [0, 1], stretched (not letterboxed) to the input size",
        "bn_epsilon": bn_epsilon,
        "class_names": sources.class_names,
        "cfg_text": sources.cfg_bytes.decode(),
        "names_text": sources.names_text,
        "sources": {
            "cfg": {"file": sources.cfg_path.name, "sha256": _sha256(sources.cfg_bytes)},
            "weights": {"file": sources.weights_path.name, "sha256": _file_sha256(sources.weights_path)},
            "names": {"file": sources.names_path.name, "sha256": _sha256(sources.names_text.encode())},
        },
        "weights_header": {
            "major": header.major,
            "minor": header.minor,
            "revision": header.revision,
            "seen": header.seen,
        },
        "params": {"file": PARAMS_FILE, "sha256": _sha256(params_bytes)},
    }


def convert_darknet(
    cfg_path: str | os.PathLike,
    weights_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    names_path: str | os.PathLike | None = None,
    bn_epsilon: float = 1e-5,
) -> pathlib.Path:
    """Writes ``output_dir/{params.msgpack,spec.json}`` from a darknet cfg and weights.

    Args:
      cfg_path, weights_path: the darknet files.
      output_dir: created if missing; existing files of the same names are replaced.
      names_path: class names, one per line; default ``coco.names`` beside the cfg.
      bn_epsilon: added to the rolling variance; darknet's 1e-5 (``network`` docstring).

    Returns:
      ``output_dir`` as a ``pathlib.Path`` (what ``launch/convert_weights.py`` prints from).

    Raises:
      cfg.CfgError, weights.WeightsError, FileNotFoundError, ValueError: a bad cfg, weights
        that do not match it, a missing names file, or a names count unlike the yolo classes.
    """
    cfg_path, weights_path = pathlib.Path(cfg_path), pathlib.Path(weights_path)
    names_path = pathlib.Path(names_path) if names_path else cfg_path.parent / "coco.names"
    sources = _read_sources(cfg_path, weights_path, names_path)
    params_bytes = serialization.msgpack_serialize(weights.to_variables(sources.config, sources.layers))
    spec = _spec(sources, params_bytes, bn_epsilon)
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / PARAMS_FILE).write_bytes(params_bytes)
    (output_dir / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    return output_dir


def load_converted(output_dir: str | os.PathLike) -> tuple[network.Darknet, dict[str, Any], dict[str, Any]]:
    """Loads a directory written by ``convert_darknet``.

    Returns:
      (model, variables, spec): a ``network.Darknet``, its variables (on the default device),
      and the spec dict.

    Raises:
      FileNotFoundError: no such directory, or a file missing from it.
      ValueError: a spec of another format, a params file whose sha256 differs from the
        spec's, or params that do not fit the cfg.
    """
    output_dir = pathlib.Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"{output_dir}: no such model directory (make one with convert_darknet)")
    for name in (SPEC_FILE, PARAMS_FILE):
        if not (output_dir / name).is_file():
            raise FileNotFoundError(f"{output_dir}: missing {name}; not a converted darknet model")
    spec = json.loads((output_dir / SPEC_FILE).read_text())
    if spec.get("format") != FORMAT:
        raise ValueError(f"{output_dir / SPEC_FILE}: format {spec.get('format')!r}, expected {FORMAT!r}")
    params_bytes = (output_dir / PARAMS_FILE).read_bytes()
    if _sha256(params_bytes) != spec["params"]["sha256"]:
        raise ValueError(
            f"{output_dir / PARAMS_FILE}: sha256 differs from {SPEC_FILE}; file changed or truncated"
        )
    config = cfg.parse_cfg(spec["cfg_text"], f"{output_dir / SPEC_FILE}[cfg_text]")
    variables = serialization.msgpack_restore(params_bytes)
    for layer, kernel_shape in weights.conv_layers(config):
        name = network.layer_name(layer.index)
        kernel = variables["params"].get(name, {}).get("kernel")
        expected = tuple(kernel_shape[i] for i in (2, 3, 1, 0))
        if kernel is None or tuple(np.shape(kernel)) != expected:
            got = None if kernel is None else np.shape(kernel)
            raise ValueError(f"{output_dir / PARAMS_FILE}: {name}/kernel is {got}, the cfg wants {expected}")
    model = network.Darknet(config, bn_epsilon=spec["bn_epsilon"])
    return model, jax.device_put(variables), spec
