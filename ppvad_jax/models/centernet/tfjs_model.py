"""A TF.js graph model on disk (``model.json`` + binary weight shards) as nodes and numpy arrays.

The format (what ``tensorflowjs_converter`` writes for a frozen TF graph):
- ``modelTopology.node``: TF ``NodeDef``s as protobuf JSON: ``name``, ``op``, ``input`` (names,
  ``"node:k"`` for a node's k-th output, ``"^node"`` for a control edge, ignored here) and ``attr``
  (``{"i": "2"}``, ``{"f": 0.5}``, ``{"b": true}``, ``{"s": base64}``, ``{"type": "DT_FLOAT"}``,
  ``{"list": {"i": [...]}}``);
- ``weightsManifest``: groups of shard ``paths`` (concatenated in order into one byte string)
  and ``weights``, read one after the other from it: ``name`` (a ``Const`` node), ``shape``,
  ``dtype`` and, when quantized, ``quantization``: ``{"dtype": "float16"}`` (half floats) or
  ``{"dtype": "uint8" | "uint16", "scale": s, "min": m}`` (value = q * s + m);
- ``signature``: the input and output tensors with their shapes.
Only float32, int32 and bool weights are read (strings and complex numbers are refused).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib

import numpy as np


class TfjsModelError(ValueError):
    """A model file that cannot be read as a TF.js graph model; the message names the file."""


_PLAIN = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("bool")}
_QUANTIZED = {"float16": np.dtype("<f2"), "uint8": np.dtype("u1"), "uint16": np.dtype("<u2")}


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]  # data inputs only ("node" or "node:k"), in order
    attr: dict  # raw protobuf-JSON attributes; read them with ``attribute``


@dataclasses.dataclass(frozen=True)
class TfjsModel:
    path: pathlib.Path
    nodes: dict[str, Node]  # by name, in the file's order
    weights: dict[str, np.ndarray]  # Const node name -> value (dequantized)
    signature: dict  # {"inputs": {name: shape}, "outputs": {name: shape}}; shape: ints, -1 unknown
    metadata: dict  # format, generatedBy, convertedBy


def attribute(node: Node, key: str, default=None):
    """The attribute ``key`` of ``node`` as a Python value (int, float, bool, str or list)."""
    if key not in node.attr:
        return default
    value = node.attr[key]
    if "list" in value:
        items = value["list"]
        for kind in ("i", "f", "b", "s", "type"):
            if kind in items:
                return [_scalar(kind, v) for v in items[kind]]
        return []
    for kind in ("i", "f", "b", "s", "type"):
        if kind in value:
            return _scalar(kind, value[kind])
    return value


def _scalar(kind, value):
    if kind == "i":
        return int(value)
    if kind == "f":
        return float(value)
    if kind == "b":
        return bool(value)
    if kind == "s":
        return base64.b64decode(value).decode("utf-8")
    return value


def _shape(tensor_shape) -> list[int]:
    return [int(d.get("size", -1)) for d in tensor_shape.get("dim", [])]


def read_weights(manifest: list, data: bytes, *, where: str) -> dict[str, np.ndarray]:
    """The weights of a manifest from the concatenated shard bytes ``data`` (module docstring)."""
    out, offset = {}, 0
    for spec in (w for group in manifest for w in group["weights"]):
        name, shape, dtype = spec["name"], tuple(spec["shape"]), spec["dtype"]
        if dtype not in _PLAIN:
            raise TfjsModelError(f"{where}: weight {name} has dtype {dtype}; only {sorted(_PLAIN)} are read")
        quantization = spec.get("quantization")
        stored = _PLAIN[dtype]
        if quantization:
            if quantization["dtype"] not in _QUANTIZED:
                raise TfjsModelError(f"{where}: weight {name} is quantized as {quantization['dtype']}")
            stored = _QUANTIZED[quantization["dtype"]]
        count = int(np.prod(shape, dtype=np.int64))
        size = count * stored.itemsize
        if offset + size > len(data):
            raise TfjsModelError(
                f"{where}: weight {name} runs past the end of the shards ({len(data)} bytes)"
            )
        raw = np.frombuffer(data, stored, count, offset).reshape(shape)
        offset += size
        if quantization and quantization["dtype"] != "float16":
            raw = raw.astype(np.float32) * np.float32(quantization["scale"]) + np.float32(quantization["min"])
            if dtype == "int32":
                raw = np.rint(raw)
        out[name] = raw.astype(_PLAIN[dtype])
    if offset != len(data):
        raise TfjsModelError(f"{where}: the manifest reads {offset} bytes, the shards hold {len(data)}")
    return out


def load(model_json) -> TfjsModel:
    """Reads ``model_json`` and the shards its manifest names (beside it); nothing is fetched."""
    path = pathlib.Path(model_json)
    try:
        model = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TfjsModelError(f"{path}: not readable as JSON: {e}") from e
    if model.get("format") != "graph-model" or "modelTopology" not in model:
        raise TfjsModelError(f"{path}: format {model.get('format')!r}, expected a TF.js 'graph-model'")
    manifest = model.get("weightsManifest", [])
    data = b"".join((path.parent / shard).read_bytes() for group in manifest for shard in group["paths"])
    weights = read_weights(manifest, data, where=str(path))
    nodes = {}
    for n in model["modelTopology"]["node"]:
        inputs = tuple(i for i in n.get("input", []) if not i.startswith("^"))
        nodes[n["name"]] = Node(n["name"], n["op"], inputs, n.get("attr", {}))
    missing = [n.name for n in nodes.values() if n.op == "Const" and n.name not in weights]
    if missing:
        raise TfjsModelError(f"{path}: Const nodes without a weight: {missing[:5]}")
    signature = model.get("signature") or {}
    return TfjsModel(
        path=path,
        nodes=nodes,
        weights=weights,
        signature={
            side: {name: _shape(t.get("tensorShape", {})) for name, t in signature.get(side, {}).items()}
            for side in ("inputs", "outputs")
        },
        metadata={k: model.get(k) for k in ("format", "generatedBy", "convertedBy")},
    )
