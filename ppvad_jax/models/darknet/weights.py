"""Darknet ``.weights`` files: reader, writer, seeded random weights, Flax variables.

Layout (little-endian), as darknet's ``load_weights_upto`` / ``save_weights_upto`` and
OpenCV's ``ReadDarknetFromWeightsStream`` read it:
- header: int32 major, minor, revision; then ``seen`` (images trained on) as uint64 when
  ``major * 10 + minor >= 2``, else uint32;
- then, for every ``[convolutional]`` layer in cfg order, float32: ``filters`` biases (the BN
  beta when batch_normalize), then if batch_normalize ``filters`` scales (gamma), rolling
  means and rolling variances; then the kernel, ``filters x in/groups x size x size`` (OIHW).
Nothing else: the yolo, route, shortcut, maxpool and upsample layers of YOLOv4 carry no weights.

Darknet reads what it can and warns on a short file; this reader insists on the exact size,
so a cfg that does not match its weights fails here, naming the layer.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ppvad_jax.models.darknet import cfg, network, shapes


class WeightsError(ValueError):
    """A .weights file that does not match its cfg (truncated, too long, unknown header)."""


@dataclasses.dataclass(frozen=True)
class Header:
    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_bytes(self) -> int:
        return 8 if self.major * 10 + self.minor >= 2 else 4

    @property
    def nbytes(self) -> int:
        return 12 + self.seen_bytes


@dataclasses.dataclass
class ConvWeights:
    """One convolutional layer's arrays, in the file's layout (kernel OIHW)."""

    bias: np.ndarray  # [filters]
    kernel: np.ndarray  # [filters, in_channels / groups, size, size]
    scale: np.ndarray | None = None  # [filters], BN only
    rolling_mean: np.ndarray | None = None
    rolling_variance: np.ndarray | None = None

    def arrays(self) -> list[np.ndarray]:
        """The arrays in file order."""
        bn = [] if self.scale is None else [self.scale, self.rolling_mean, self.rolling_variance]
        return [self.bias, *bn, self.kernel]


def conv_layers(config: cfg.DarknetConfig) -> list[tuple[cfg.Convolutional, tuple[int, int, int, int]]]:
    """Every convolutional layer with its OIHW kernel shape, in file order."""
    in_channels = shapes.input_channels(config)
    return [
        (layer, (layer.filters, in_channels[layer.index] // layer.groups, layer.size, layer.size))
        for layer in config.layers
        if isinstance(layer, cfg.Convolutional)
    ]


def _layer_floats(layer: cfg.Convolutional, kernel_shape) -> int:
    return layer.filters * (4 if layer.batch_normalize else 1) + int(np.prod(kernel_shape))


def expected_nbytes(config: cfg.DarknetConfig, header: Header = Header()) -> int:
    return header.nbytes + 4 * sum(_layer_floats(layer, shape) for layer, shape in conv_layers(config))


def read_header(buffer: bytes | np.ndarray, path: str = "<weights>") -> Header:
    buffer = np.frombuffer(buffer, np.uint8) if isinstance(buffer, bytes) else buffer
    if buffer.size < 12:
        raise WeightsError(f"{path}: {buffer.size} bytes, too short for a darknet header (at least 16)")
    major, minor, revision = (int(v) for v in buffer[:12].view("<i4"))
    if major > 1000 or minor > 1000:
        raise WeightsError(f"{path}: version {major}.{minor}: transposed weights are not supported")
    header = Header(major, minor, revision, 0)
    if buffer.size < header.nbytes:
        raise WeightsError(f"{path}: {buffer.size} bytes, too short for a header of {header.nbytes}")
    seen = buffer[12 : header.nbytes].view("<u8" if header.seen_bytes == 8 else "<u4")[0]
    return dataclasses.replace(header, seen=int(seen))


def read_weights(path: str | os.PathLike, config: cfg.DarknetConfig) -> tuple[Header, dict[int, ConvWeights]]:
    """Reads a .weights file for ``config``.

    Returns:
      The header and, per convolutional layer index, its arrays (float32, file layout).

    Raises:
      WeightsError: the file is shorter or longer than the cfg implies (names the file, the
        layer where it runs out, and expected vs actual bytes).
    """
    path = pathlib.Path(path)
    try:
        buffer = np.fromfile(path, dtype=np.uint8)  # YOLOv4: 246 MB, read once
    except OSError as e:
        raise WeightsError(f"{path}: cannot read weights: {e}") from None
    header = read_header(buffer, str(path))
    total = expected_nbytes(config, header)
    offset = header.nbytes
    layers = {}
    for layer, kernel_shape in conv_layers(config):
        end = offset + 4 * _layer_floats(layer, kernel_shape)
        if end > buffer.size:
            raise WeightsError(
                f"{path}: truncated at layer {layer.index} (convolutional, {config.source}:{layer.line}): "
                f"it needs bytes {offset}..{end}, the file has {buffer.size} bytes; "
                f"expected {total} bytes in all for this cfg"
            )
        floats = buffer[offset:end].view("<f4")
        n = layer.filters
        parts = {"bias": floats[:n]}
        if layer.batch_normalize:
            parts.update(
                scale=floats[n : 2 * n],
                rolling_mean=floats[2 * n : 3 * n],
                rolling_variance=floats[3 * n : 4 * n],
            )
        parts["kernel"] = floats[(4 if layer.batch_normalize else 1) * n :].reshape(kernel_shape)
        layers[layer.index] = ConvWeights(**{k: v.astype(np.float32) for k, v in parts.items()})
        offset = end
    if offset != buffer.size:
        raise WeightsError(
            f"{path}: {buffer.size} bytes, but {config.source} needs exactly {total} "
            f"({buffer.size - total} bytes left after the last convolutional layer): "
            "wrong cfg for these weights?"
        )
    return header, layers


def write_weights(
    path: str | os.PathLike,
    config: cfg.DarknetConfig,
    layers: dict[int, ConvWeights],
    header: Header = Header(),
) -> None:
    """Writes ``layers`` (per convolutional layer index) in darknet's layout."""
    chunks = [np.array([header.major, header.minor, header.revision], "<i4").tobytes()]
    chunks.append(np.array([header.seen], "<u8" if header.seen_bytes == 8 else "<u4").tobytes())
    for layer, kernel_shape in conv_layers(config):
        weights = layers[layer.index]
        if weights.kernel.shape != kernel_shape or (weights.scale is None) == layer.batch_normalize:
            raise WeightsError(
                f"layer {layer.index}: kernel {weights.kernel.shape}, BN {weights.scale is not None}; "
                f"the cfg wants {kernel_shape}, BN {layer.batch_normalize}"
            )
        chunks.extend(np.ascontiguousarray(a, "<f4").tobytes() for a in weights.arrays())
    pathlib.Path(path).write_bytes(b"".join(chunks))


def random_weights(
    config: cfg.DarknetConfig, *, seed: int, head_gain: float = 1.0, bias_std: float = 0.1
) -> dict[int, ConvWeights]:
    """Seeded random weights in the file layout (for tests and benchmarks: no download).

    Kernels ~ N(0, 1 / fan_in), ``head_gain^2 / fan_in`` for layers without batch norm (the
    ones feeding yolo layers); BN gamma ~ U(0.5, 1.5), beta and rolling mean ~ N(0, bias_std^2),
    rolling variance ~ U(0.5, 1.5). Fixed statistics cannot match what a deep network really
    computes: through YOLOv4's 162 layers the image's signal either fades under the biases or,
    with slightly larger kernels, overflows float32 (both seen). ``calibrate_batch_stats``
    fixes that; the benchmark does not need it.
    """
    rng = np.random.default_rng(seed)
    layers = {}
    for layer, kernel_shape in conv_layers(config):
        n = layer.filters
        gain = 1.0 if layer.batch_normalize else head_gain
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32)
        kernel *= np.float32(gain / np.sqrt(np.prod(kernel_shape[1:])))
        bias = (rng.standard_normal(n) * bias_std).astype(np.float32)
        bn = {}
        if layer.batch_normalize:
            bn = dict(
                scale=rng.uniform(0.5, 1.5, n).astype(np.float32),
                rolling_mean=(rng.standard_normal(n) * bias_std).astype(np.float32),
                rolling_variance=rng.uniform(0.5, 1.5, n).astype(np.float32),
            )
        layers[layer.index] = ConvWeights(bias=bias, kernel=kernel, **bn)
    return layers


def calibrate_batch_stats(
    config: cfg.DarknetConfig,
    layers: dict[int, ConvWeights],
    images: ArrayLike,
    *,
    min_variance: float = 0.01,
) -> dict[int, ConvWeights]:
    """Sets every rolling mean and variance to the statistics the network computes on ``images``.

    One forward pass with batch statistics (``use_running_average=False``), as batch norm
    during training: every normalized output then has mean beta and std gamma on these
    images, so a random network keeps activations of order 1 and its yolo logits spread over
    a few units. Variances are floored at ``min_variance``: deep layers see few pixels, and a
    near-constant channel would otherwise amplify any other image's deviation a hundredfold.
    Cost: one compiled forward pass (YOLOv4, 4 images of 128x128: about 8 s on 2 CPU cores).
    """
    model = network.Darknet(config, use_running_average=False)
    apply_fn = jax.jit(functools.partial(model.apply, mutable=["batch_stats"]))
    _, updates = apply_fn(to_variables(config, layers), jnp.asarray(images, jnp.float32))
    calibrated = dict(layers)
    for name, stats in updates["batch_stats"].items():
        index = int(name.split("_")[1])
        calibrated[index] = dataclasses.replace(
            layers[index],
            rolling_mean=np.asarray(stats["mean"], np.float32),
            rolling_variance=np.maximum(np.asarray(stats["var"], np.float32), min_variance),
        )
    return calibrated


def to_variables(config: cfg.DarknetConfig, layers: dict[int, ConvWeights]) -> dict:
    """Flax variables for ``network.Darknet(config)`` (kernels transposed OIHW -> HWIO)."""
    params, batch_stats = {}, {}
    for layer, _ in conv_layers(config):
        weights = layers[layer.index]
        name = network.layer_name(layer.index)
        params[name] = {
            "kernel": np.ascontiguousarray(weights.kernel.transpose(2, 3, 1, 0)),
            "bias": weights.bias,
        }
        if layer.batch_normalize:
            params[name]["scale"] = weights.scale
            batch_stats[name] = {"mean": weights.rolling_mean, "var": weights.rolling_variance}
    return {"params": params, "batch_stats": batch_stats}


def from_variables(config: cfg.DarknetConfig, variables: dict) -> dict[int, ConvWeights]:
    """The inverse of ``to_variables`` (to write a Flax model back as .weights)."""
    layers = {}
    for layer, _ in conv_layers(config):
        name = network.layer_name(layer.index)
        p = variables["params"][name]
        bn = {}
        if layer.batch_normalize:
            stats = variables["batch_stats"][name]
            bn = dict(
                scale=np.asarray(p["scale"]),
                rolling_mean=np.asarray(stats["mean"]),
                rolling_variance=np.asarray(stats["var"]),
            )
        layers[layer.index] = ConvWeights(
            bias=np.asarray(p["bias"]), kernel=np.asarray(p["kernel"]).transpose(3, 2, 0, 1), **bn
        )
    return layers
