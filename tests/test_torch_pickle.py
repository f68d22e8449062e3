"""torch_pickle reads what torch.save writes, in both containers, and nothing that runs code.

torch.load (torch is a test-only dependency) is the reference: every array must equal its tensor.
"""

import collections
import pickle
import zipfile

import numpy as np
import pytest

from ppvad_jax.models import torch_pickle

torch = pytest.importorskip("torch")


def tensors():
    """Contiguous, transposed, strided, shared-storage, 0-d and non-float32 tensors."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(4, 5, generator=generator)
    state = collections.OrderedDict(
        plain=base,
        transposed=torch.randn(6, 4, generator=generator).t(),
        strided=torch.arange(10)[2:9:3],
        row_of_plain=base[2],  # a view of another tensor's storage, at an offset
        scalar=torch.tensor(7, dtype=torch.int64),  # what num_batches_tracked is
        half=torch.randn(2, 3, generator=generator).half(),
        bfloat16=torch.randn(3, generator=generator).bfloat16(),
        flags=torch.tensor([True, False, True]),
        parameter=torch.nn.Parameter(torch.randn(2, 2, generator=generator)),
    )
    state._metadata = {"": {"version": 1}}
    return state


def as_numpy(tensor):
    tensor = tensor.detach()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


@pytest.mark.parametrize("zip_container", [True, False], ids=["zip", "legacy"])
def test_reads_what_torch_loads(tmp_path, zip_container):
    path = tmp_path / "state.pth"
    torch.save(tensors(), path, _use_new_zipfile_serialization=zip_container)
    assert zipfile.is_zipfile(path) == zip_container
    want = torch.load(path, weights_only=True)
    got = torch_pickle.load(path)
    assert isinstance(got, collections.OrderedDict) and list(got) == list(want)
    assert got._metadata == {"": {"version": 1}}
    for name, tensor in want.items():
        expected = as_numpy(tensor)
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


class _Reduces:
    """Pickles as a call of ``fn(*args)``: how a hostile file would run code."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _zip_with(path, obj, storages=None, persistent_id=lambda obj: None):
    """A torch-style zip: ``archive/data.pkl`` pickling ``obj``, plus raw storages."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return persistent_id(obj)

    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("archive/data.pkl", "w") as f:
            Pickler(f, protocol=2).dump(obj)
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def test_a_global_that_is_not_a_tensor_is_refused(tmp_path):
    path = _zip_with(tmp_path / "hostile.pth", {"w": _Reduces(eval, "__import__('os').getpid()")})
    with pytest.raises(ValueError, match=r"hostile\.pth: refers to (__builtin__|builtins)\.eval"):
        torch_pickle.load(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02 not a pickle at all")
    with pytest.raises(ValueError, match=r"garbage\.pth: "):
        torch_pickle.load(garbage)


def test_a_view_past_its_storage_is_refused(tmp_path):
    storage_marker = object()
    tensor = _Reduces(
        torch._utils._rebuild_tensor_v2, storage_marker, 0, (100,), (1,), False, collections.OrderedDict()
    )
    path = _zip_with(
        tmp_path / "overrun.pth",
        {"w": tensor},
        storages={"0": np.zeros(4, np.float32).tobytes()},
        persistent_id=lambda obj: (
            ("storage", torch.FloatStorage, "0", "cpu", 4) if obj is storage_marker else None
        ),
    )
    with pytest.raises(ValueError, match="reads element 99 of a 4-element FloatStorage"):
        torch_pickle.load(path)


def test_a_truncated_legacy_file_is_refused(tmp_path):
    path = tmp_path / "state.pth"
    torch.save({"w": torch.ones(100)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="truncated"):
        torch_pickle.load(path)
