"""PyTorch ``.pth`` / ``.pt`` state_dicts read with numpy alone: no torch, no arbitrary code.

``torch.save`` writes one of two containers, both read here:
- the zip format (torch >= 1.6): ``<root>/data.pkl`` pickles the object, each tensor's
  storage is the raw little-endian bytes of ``<root>/data/<key>``;
- the legacy format (torchvision's 2019 files, e.g. ``mobilenet_v2-b0353104.pth``): five
  pickles in a row (magic number, protocol version, system info, the object, the storage
  keys), then each storage as an int64 element count followed by its raw bytes.

The object pickle names its tensors through a handful of globals (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage`` ...). The unpickler here resolves
exactly those, to numpy stand-ins, and refuses any other global with an error naming it, so a
hostile file cannot run code (what ``torch.load(weights_only=True)`` promises too). Strided
views are bounds-checked against their storage before numpy reads them. Every refusal is a
ValueError naming the file.
"""

import collections
import io
import os
import pathlib
import pickle
import zipfile
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py's MAGIC_NUMBER
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip


class _StorageType(str):
    """The stand-in for ``torch.FloatStorage`` etc.: just its name."""


class _Storage:
    """One storage: its dtype and element count; its values arrive with ``fill``."""

    def __init__(self, storage_type, numel):
        self.name = str(storage_type)
        self.dtype = np.dtype(_STORAGE_DTYPES[self.name])
        self.numel = int(numel)
        self.values = None

    def fill(self, raw, where):
        if len(raw) != self.numel * self.dtype.itemsize:
            raise ValueError(
                f"{where}: {len(raw)} bytes for {self.numel} elements of {self.name}; truncated file?"
            )
        self.values = np.frombuffer(raw, self.dtype)


class _Tensor:
    """A tensor as ``_rebuild_tensor_v2`` describes it; turned into numpy once storages are read."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise ValueError(f"a tensor's storage is a {type(storage).__name__}, not a storage")
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def to_numpy(self):
        values, size, stride = self.storage.values, self.size, self.stride
        if len(size) != len(stride) or self.offset < 0 or any(s < 0 for s in (*size, *stride)):
            raise ValueError(f"bad tensor view: size {size}, stride {stride}, offset {self.offset}")
        if 0 not in size:
            last = self.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last >= len(values):
                raise ValueError(
                    f"tensor view (size {size}, stride {stride}, offset {self.offset}) reads element "
                    f"{last} of a {len(values)}-element {self.storage.name}"
                )
        view = np.lib.stride_tricks.as_strided(
            values[self.offset :], size, [s * values.itemsize for s in stride], writeable=False
        )
        array = np.array(view)  # a copy: owns its memory, C order
        if self.storage.name == "BFloat16Storage":  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, meta=None):
    del requires_grad, hooks, meta  # autograd state; meaningless for weights
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    del requires_grad, hooks
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    """Resolves only ``_GLOBALS``; storages come from ``storage_fn(storage_type, key, numel)``."""

    def __init__(self, file, where, storage_fn):
        super().__init__(file)
        self.where, self.storage_fn, self.storages = where, storage_fn, {}

    def find_class(self, module, name):
        if (module, name) not in _GLOBALS:
            raise pickle.UnpicklingError(
                f"{self.where}: refers to {module}.{name}, which a state_dict of tensors does not need; "
                "refusing to load it (only tensors, their storages and OrderedDict are read)"
            )
        return _GLOBALS[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self.where}: unknown persistent id {str(pid)[:80]}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"{self.where}: storage {key!r} has type {storage_type!r}")
        if len(pid) > 5 and pid[5] is not None:  # legacy storage views (pre-2018 torch)
            raise pickle.UnpicklingError(f"{self.where}: storage {key!r} is a view; not supported")
        if key not in self.storages:
            self.storages[key] = self.storage_fn(storage_type, str(key), numel)
        return self.storages[key]


def _materialize(obj):
    """The unpickled object with every ``_Tensor`` replaced by its numpy array."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        out = type(obj)((k, _materialize(v)) for k, v in obj.items())
        if isinstance(obj, collections.OrderedDict):
            out.__dict__.update(obj.__dict__)  # state_dict's _metadata
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _load_zip(path, archive):
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path}: a torch zip file holds one <root>/data.pkl; found {pickles[:5]}")
    root = pickles[0].removesuffix("data.pkl")
    if f"{root}byteorder" in names and archive.read(f"{root}byteorder").strip() != b"little":
        raise ValueError(f"{path}: big-endian tensors are not supported")

    def storage(storage_type, key, numel):
        member = f"{root}data/{key}"
        if member not in names:
            raise ValueError(f"{path}: storage {key!r} has no member {member}")
        result = _Storage(storage_type, numel)
        result.fill(archive.read(member), f"{path}: {member}")
        return result

    return _Unpickler(io.BytesIO(archive.read(pickles[0])), str(path), storage).load()


def _load_legacy(path, f):
    where = str(path)
    try:
        magic = _Unpickler(f, where, None).load()
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError) as e:
        raise ValueError(f"{path}: neither a zip nor a legacy torch file ({type(e).__name__}: {e})") from e
    if magic != LEGACY_MAGIC:
        raise ValueError(f"{path}: neither a zip nor a legacy torch file (magic {str(magic)[:40]!r})")
    header = [magic, *(_Unpickler(f, where, None).load() for _ in range(2))]  # plain values
    if not (isinstance(header[2], dict) and header[2].get("little_endian", False)):
        raise ValueError(f"{path}: big-endian or unknown system info {header[2]!r}; not supported")
    unpickler = _Unpickler(f, where, lambda storage_type, _key, numel: _Storage(storage_type, numel))
    obj = unpickler.load()
    keys = _Unpickler(f, where, None).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise ValueError(f"{path}: the storage key list does not match the storages the object uses")
    for key in keys:
        storage = unpickler.storages[str(key)]
        numel = int.from_bytes(f.read(8), "little", signed=True)
        if numel != storage.numel:
            raise ValueError(f"{path}: storage {key!r} holds {numel} elements, its tensors {storage.numel}")
        storage.fill(f.read(numel * storage.dtype.itemsize), f"{path}: storage {key!r}")
    return obj


def load(path: str | os.PathLike) -> Any:
    """The object ``torch.save`` wrote to ``path``, tensors as numpy arrays (bfloat16 widened to float32).

    Raises:
      ValueError naming the file: a global that is not a tensor's (refused, never resolved), a
      file that is neither torch format, truncated, big-endian, or whose views reach outside
      their storage. (A corrupt zip container is zipfile.BadZipFile.)
    """
    path = pathlib.Path(path)
    try:
        with path.open("rb") as f:
            if zipfile.is_zipfile(f):
                with zipfile.ZipFile(f) as archive:
                    return _materialize(_load_zip(path, archive))
            f.seek(0)
            return _materialize(_load_legacy(path, f))
    except (pickle.UnpicklingError, EOFError) as e:  # also what the pickle machinery raises itself
        message = str(e) if str(e).startswith(str(path)) else f"{path}: unreadable pickle: {e}"
        raise ValueError(message) from e
