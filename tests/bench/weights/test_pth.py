"""Reading PyTorch state_dicts without torch: both on-disk formats, and refusal of anything else.

The files are written here the way torch.save lays them out (a stand-in ``torch``
module provides the globals the pickles name), so no torch is needed.
"""
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from bench.core.errors import CheckpointError
from bench.weights.pth import LEGACY_MAGIC, read_state_dict


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Tensor:
    """What torch pickles for a tensor: a reduce to _rebuild_tensor_v2 over a storage."""

    def __init__(self, torch, key, storage, offset, shape, stride):
        self.args = (("storage", torch, key, storage), offset, shape, stride)

    def __reduce__(self):
        (tag, torch, key, storage), offset, shape, stride = self.args
        return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                (_StorageRef(torch, key, storage), offset, shape, stride, False, {}))


class _StorageRef:
    def __init__(self, torch, key, data):
        self.torch, self.key, self.data = torch, key, data


def _pickle_state(torch, tensors) -> tuple[bytes, list[_StorageRef]]:
    buf, refs = io.BytesIO(), []

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageRef):
                refs.append(obj)
                kind = torch.LongStorage if obj.data.dtype == np.int64 else torch.FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.data.size)
            return None

    P(buf, protocol=2).dump(tensors)
    return buf.getvalue(), refs


def _state(torch):
    base = np.arange(6, dtype=np.float32)
    return {
        "w": _Tensor(torch, "0", base, 0, (2, 3), (3, 1)),
        "w_t": _Tensor(torch, "0", base, 0, (3, 2), (1, 3)),  # a transposed view of the same storage
        "b": _Tensor(torch, "1", np.array([7.0, 8.0, 9.0], np.float32), 1, (2,), (1,)),
        "n": _Tensor(torch, "2", np.array([5], np.int64), 0, (), ()),
    }


def _expected():
    base = np.arange(6, dtype=np.float32)
    return {"w": base.reshape(2, 3), "w_t": base.reshape(2, 3).T, "b": np.array([8.0, 9.0], np.float32),
            "n": np.array(5, np.int64)}


def _check(got):
    want = _expected()
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name]), name


def test_legacy_format(fake_torch, tmp_path):
    body, refs = _pickle_state(fake_torch, _state(fake_torch))
    storages = {r.key: r.data for r in refs}
    path = tmp_path / "legacy.pth"
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(body)
        pickle.dump(sorted(storages), f, protocol=2)
        for key in sorted(storages):
            f.write(np.int64(storages[key].size).tobytes() + storages[key].tobytes())
    _check(read_state_dict(path))


def test_zip_format(fake_torch, tmp_path):
    body, refs = _pickle_state(fake_torch, _state(fake_torch))
    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", body)
        for r in refs:
            z.writestr(f"archive/data/{r.key}", r.data.tobytes())
        z.writestr("archive/version", "3\n")
    _check(read_state_dict(path))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="refusing to unpickle posix.system|refusing to unpickle os.system"):
        read_state_dict(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(CheckpointError, match="junk.pth"):
        read_state_dict(path)
