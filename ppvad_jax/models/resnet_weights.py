"""torchvision ResNet-50 weights -> Flax ``resnet.ResNet50`` variables, saved and loaded with a spec.

``convert_torchvision(input_path, output_dir)`` reads a torchvision state_dict from
- ``.pth`` / ``.pt``: parsed by ``torch_pickle`` with numpy (zip and legacy containers), so
  torch is not needed; only tensors, their storages and OrderedDict are unpickled;
- ``.safetensors``: parsed here with numpy (8-byte little-endian header length, JSON header,
  raw little-endian tensors), so no safetensors package is needed;
- ``.npz``: the same key names as arrays;
maps every key strictly (``strict_flax_variables``, shared with ``mobilenet_weights``: unknown
or missing keys are an error listing them; a BatchNorm's ``num_batches_tracked`` is ignored),
transposes conv kernels OIHW -> HWIO and the fc weight [out, in] -> [in, out], and writes
``variables.msgpack`` (flax msgpack of ``{"params", "batch_stats"}``) and ``spec.json`` (source
file, its sha256, the preprocessing and norm the weights need).

``load_converted(output_dir)`` -> ``(model, variables, spec)``. ``load_backbone(pretrained)`` is
the entry point for trainers: a converted directory, or None for an explicitly flagged random init.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import flax.serialization
import jax
import numpy as np
import numpy.typing as npt
from absl import logging
from flax import traverse_util

from ppvad_jax.models import resnet, torch_pickle

TORCHVISION_FILES = {
    "resnet50-0676ba61.pth": "IMAGENET1K_V1, ImageNet top-1 76.1%",
    "resnet50-11ad3fa6.pth": "IMAGENET1K_V2, ImageNet top-1 80.9%",
}
TORCHVISION_URL = "https://download.pytorch.org/models/{filename}"
VARIABLES_FILE = "variables.msgpack"
SPEC_FILE = "spec.json"
_MAX_LISTED = 20  # keys listed per error; a wrong architecture would otherwise print 300


# ---------------------------------------------------------------------------------------
# safetensors, by hand: https://github.com/huggingface/safetensors#format
# ---------------------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}  # fmt: skip
_NP_TO_ST = {np.dtype(v).str.lstrip("<|"): k for k, v in _ST_DTYPES.items()}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{name: np.ndarray} from a .safetensors file (BF16 is widened to float32)."""
    data = pathlib.Path(path).read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header length {header_len} exceeds the file; not a safetensors file?")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except ValueError as e:
        raise ValueError(f"{path}: unreadable safetensors JSON header: {e}") from e
    header.pop("__metadata__", None)
    buffer = memoryview(data)[8 + header_len :]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if not 0 <= begin <= end <= len(buffer):
            raise ValueError(f"{path}: tensor {name!r} offsets {begin}..{end} outside the data")
        raw = buffer[begin:end]
        if entry["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif entry["dtype"] in _ST_DTYPES:
            array = np.frombuffer(raw, _ST_DTYPES[entry["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {entry['dtype']}")
        if array.size != int(np.prod(shape)):
            raise ValueError(f"{path}: tensor {name!r}: {array.size} values for shape {shape}")
        tensors[name] = array.reshape(shape).copy()  # own the memory, not the file's bytes
    return tensors


def save_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, npt.ArrayLike],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Writes {name: array} as .safetensors (little-endian, C order, header padded to 8 bytes)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        key = array.dtype.str.lstrip("<|")
        if key not in _NP_TO_ST:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} has no safetensors equivalent")
        raw = array.tobytes()
        header[name] = {
            "dtype": _NP_TO_ST[key],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the format allows trailing spaces
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------
# Reading a state_dict
# ---------------------------------------------------------------------------------------


def _read_torch(path):
    state = torch_pickle.load(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    out = {}
    for name, array in state.items():
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{path}: entry {name!r} is a {type(array).__name__}, not a tensor")
        out[name] = array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{torchvision key: np.ndarray} from a .pth / .pt, .safetensors or .npz file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt"):
        return _read_torch(path)
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    raise ValueError(f"{path}: unknown weights format {suffix!r}; expected .pth, .pt, .safetensors or .npz")


# ---------------------------------------------------------------------------------------
# Key mapping
# ---------------------------------------------------------------------------------------

LEAF_TO_TORCH = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
}


def _torch_module(flax_module):
    """Flax module name -> torchvision's: layer1_0 -> layer1.0, downsample_conv / _bn -> downsample.0 / .1."""
    if flax_module.startswith("layer"):
        return flax_module.replace("_", ".")
    return {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(flax_module, flax_module)


def torch_key(path: tuple[str, ...]) -> str:
    """torchvision key of a Flax leaf: ("params", "layer1_0", "bn1", "scale") -> "layer1.0.bn1.weight"."""
    *modules, leaf = path[1:]
    return ".".join([*map(_torch_module, modules), LEAF_TO_TORCH[leaf]])


def _to_flax_layout(flax_path, array):
    if flax_path[-1] == "kernel":
        # conv OIHW -> HWIO; fc [out, in] -> [in, out]
        return array.transpose(2, 3, 1, 0) if array.ndim == 4 else array.T
    return array


def _listing(keys):
    keys = sorted(keys)
    more = f" ... and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def strict_flax_variables(
    state_dict: Mapping[str, npt.ArrayLike],
    template: Mapping[str, Any],
    key_fn: Callable[[tuple[str, ...]], str],
    *,
    architecture: str,
) -> dict[str, Any]:
    """Maps a PyTorch state_dict onto a Flax variable tree, strictly: every key used exactly once.

    Any model's converter uses this (ResNet-50 here, ``mobilenet_weights``): ``key_fn`` names the
    PyTorch key of each Flax leaf; conv kernels go OIHW -> HWIO (depthwise [C, 1, kh, kw] ->
    [kh, kw, 1, C], Flax's grouped layout) and dense kernels [out, in] -> [in, out].

    Args:
      state_dict: {PyTorch key: array}. ``X.num_batches_tracked`` is ignored where ``X`` is one of
        the model's BatchNorms (a training counter; inference never reads it), refused elsewhere.
      template: the Flax variable tree (arrays or ShapeDtypeStructs), e.g. from ``jax.eval_shape``.
      key_fn: Flax leaf path (a tuple, collection first) -> its PyTorch key.
      architecture: what the state_dict should be, for the error messages.

    Returns:
      The variable tree of float32 numpy arrays.

    Raises:
      KeyError listing missing and unknown keys; ValueError listing shape mismatches (or two Flax
      leaves named by one key).
    """
    template = traverse_util.flatten_dict(template)
    expected = {key_fn(path): path for path in template}
    if len(expected) != len(template):
        raise ValueError(f"{architecture}: two Flax leaves map onto the same PyTorch key")
    batch_norms = {key.removesuffix(".running_mean") for key in expected if key.endswith(".running_mean")}
    given = {
        k: v
        for k, v in state_dict.items()
        if not (k.endswith(".num_batches_tracked") and k.removesuffix(".num_batches_tracked") in batch_norms)
    }
    missing, unknown = set(expected) - set(given), set(given) - set(expected)
    if missing or unknown:
        raise KeyError(
            f"state_dict does not match {architecture}: "
            f"{len(missing)} missing key(s): [{_listing(missing)}]; "
            f"{len(unknown)} unknown key(s): [{_listing(unknown)}]"
        )
    flat, wrong = {}, []
    for key, path in expected.items():
        array = _to_flax_layout(path, np.asarray(given[key], np.float32))
        if array.shape != template[path].shape:
            wrong.append(
                f"{key}: got {np.shape(given[key])}, Flax needs {template[path].shape} after transpose"
            )
        flat[path] = array
    if wrong:
        raise ValueError(f"{architecture}: shape mismatch(es): " + "; ".join(wrong[:_MAX_LISTED]))
    return traverse_util.unflatten_dict(flat)


def torchvision_to_flax(
    state_dict: Mapping[str, npt.ArrayLike], *, norm: str = "frozen_bn"
) -> tuple[resnet.ResNet50, dict[str, Any]]:
    """Maps a torchvision ResNet-50 state_dict onto ``resnet.ResNet50`` variables, strictly.

    Args:
      state_dict: {torchvision key: array}. An fc head is kept when fc.weight is present
        (num_classes from it); fc.bias must then be there too, and neither may be alone.
      norm: must be "frozen_bn": BatchNorm weights mean nothing to GroupNorm.

    Returns:
      ``(model, variables)``: variables is ``{"params": ..., "batch_stats": ...}`` of float32 numpy.

    Raises:
      KeyError listing missing and unknown keys; ValueError listing shape mismatches.
    """
    if norm != "frozen_bn":
        raise ValueError(f"torchvision weights are BatchNorm weights: norm must be 'frozen_bn', got {norm!r}")
    num_classes = int(np.shape(state_dict["fc.weight"])[0]) if "fc.weight" in state_dict else None
    model = resnet.ResNet50(num_classes=num_classes, norm=norm)
    variables = strict_flax_variables(
        state_dict, resnet.variable_shapes(model), torch_key, architecture="torchvision's ResNet-50"
    )
    return model, variables


# ---------------------------------------------------------------------------------------
# Saving and loading converted weights
# ---------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_torchvision(input_path: str | os.PathLike, output_dir: str | os.PathLike) -> pathlib.Path:
    """Converts a torchvision ResNet-50 state_dict file into ``output_dir`` (created). Returns the dir.

    Writes ``variables.msgpack`` and ``spec.json``; torchvision weights need the
    "torchvision" preprocessing, which the spec records.
    """
    input_path, output_dir = pathlib.Path(input_path), pathlib.Path(output_dir)
    model, variables = torchvision_to_flax(read_state_dict(input_path))
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / (VARIABLES_FILE + ".partial")
    tmp.write_bytes(flax.serialization.msgpack_serialize(variables))
    tmp.replace(output_dir / VARIABLES_FILE)
    spec = {
        "architecture": "resnet50 (torchvision v1.5: stride 2 in the bottleneck 3x3 conv)",
        "source": {
            "file": input_path.name,
            "sha256": file_sha256(input_path),
            "format": input_path.suffix.lstrip("."),
        },
        "num_classes": model.num_classes,
        "feature_dim": resnet.FEATURE_DIM,
        "norm": model.norm,
        "preprocessing": "torchvision",
        "input": "NHWC float32 224x224x3 from resnet_preprocess.preprocess(frames, mode=preprocessing)",
        "variables_file": VARIABLES_FILE,
        "random_init": False,
    }
    (output_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return output_dir


def load_converted(output_dir: str | os.PathLike) -> tuple[resnet.ResNet50, dict[str, Any], dict[str, Any]]:
    """``(model, variables, spec)`` from a directory written by ``convert_torchvision``."""
    output_dir = pathlib.Path(output_dir)
    spec = json.loads((output_dir / SPEC_FILE).read_text())
    model = resnet.ResNet50(num_classes=spec["num_classes"], norm=spec["norm"])
    restored = flax.serialization.msgpack_restore((output_dir / spec["variables_file"]).read_bytes())
    template = traverse_util.flatten_dict(resnet.variable_shapes(model))
    flat = traverse_util.flatten_dict(restored)
    bad = sorted("/".join(p) for p in set(template) ^ set(flat))
    bad += ["/".join(p) for p in template if p in flat and flat[p].shape != template[p].shape]
    if bad:
        raise ValueError(
            f"{output_dir / spec['variables_file']} does not match the spec's model: {_listing(bad)}"
        )
    return model, jax.device_put(restored), spec


# ---------------------------------------------------------------------------------------
# The entry point for trainers
# ---------------------------------------------------------------------------------------


class Backbone(NamedTuple):
    model: object  # a Flax module: resnet.ResNet50, mobilenet_v2.MobileNetV2
    variables: dict
    spec: dict
    random_init: bool  # record this in every metrics file: random-init results are not the paper's


def how_to_get_weights(output_dir: str | os.PathLike) -> list[str]:
    """The lines telling a person which file to download and the exact convert command."""
    files = [
        f"    {TORCHVISION_URL.format(filename=name)}   ({what})" for name, what in TORCHVISION_FILES.items()
    ]
    return [
        "Get one of torchvision's ImageNet ResNet-50 state_dicts:",
        *files,
        "then convert it (.pth, .safetensors or .npz; torch is not needed):",
        "    python -m launch.convert_weights --from=torchvision "
        f"--input=/path/to/resnet50-11ad3fa6.pth --output={output_dir}",
    ]


def missing_weights_message(pretrained: str | os.PathLike) -> str:
    return "\n".join([
        f"no converted ResNet-50 weights at {pretrained} (expected {SPEC_FILE} and {VARIABLES_FILE} in it).",
        *how_to_get_weights(pretrained),
        "or pass pretrained=None to train from a random init (flagged random_init=True).",
    ])  # fmt: skip


def warn_random_init(architecture: str, how_to_get: Iterable[str], use: str) -> None:
    """The loud banner of a random-init backbone: what it is, how to get weights (lines), how to use them."""
    banner = "!" * 90
    lines = [
        f"{architecture} backbone: RANDOM INITIALISATION (pretrained=None).",
        "The paper's backbone is ImageNet-pretrained; features from this one are not comparable,",
        "and every metric computed with it must carry random_init=True.",
        *how_to_get,
        use,
    ]
    logging.warning("\n".join(["", banner, *("!! " + line for line in lines), banner]))


def load_backbone(
    pretrained: str | os.PathLike | None,
    *,
    norm: str = "frozen_bn",
    preprocessing: str = "caffe_bgr",
    seed: int = 0,
) -> Backbone:
    """The ResNet-50 backbone: converted ImageNet weights, or an explicitly flagged random init.

    Args:
      pretrained: a directory written by ``convert_torchvision``, or None for random init.
      norm: for random init only ("group" is the sensible choice from scratch: a frozen BN with
        fresh statistics is the identity, so nothing normalises). Converted weights are
        "frozen_bn"; asking for another norm with them is an error.
      preprocessing: for random init only (recorded in the spec); converted weights carry theirs.
      seed: random-init seed.

    Returns:
      ``Backbone(model, variables, spec, random_init)``.
    """
    if pretrained is None:
        warn_random_init("ResNet-50", how_to_get_weights("<dir>"), "and pass pretrained=<dir>.")
        model = resnet.ResNet50(num_classes=None, norm=norm)
        variables = resnet.init_variables(model, jax.random.key(seed))
        spec = {
            "architecture": "resnet50 (torchvision v1.5: stride 2 in the bottleneck 3x3 conv)",
            "source": None,
            "num_classes": None,
            "feature_dim": resnet.FEATURE_DIM,
            "norm": norm,
            "preprocessing": preprocessing,
            "random_init": True,
            "seed": seed,
        }
        return Backbone(model, variables, spec, True)
    pretrained = pathlib.Path(pretrained)
    if not (pretrained / SPEC_FILE).is_file() or not (pretrained / VARIABLES_FILE).is_file():
        raise FileNotFoundError(missing_weights_message(pretrained))
    model, variables, spec = load_converted(pretrained)
    if norm != spec["norm"]:
        raise ValueError(
            f"{pretrained} holds {spec['norm']} weights; norm={norm!r} needs training from scratch "
            "(pretrained=None)"
        )
    return Backbone(model, variables, spec, False)
