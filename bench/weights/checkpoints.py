"""MXNet ``.params`` and MindSpore ``.ckpt`` files read with NumPy alone: untrusted input stays data.

The frameworks' own loaders are C++ parsers that trust declared sizes; a crafted
file could make them allocate whatever it declares or read past its end. These
readers parse both formats themselves and check every declared count, shape and
length against the bytes actually present *before* allocating anything, then
refuse with a ``CheckpointError`` naming the file and the entry.

``.params`` (``mx.nd.save`` of a dict): uint64 magic 0x112, uint64 reserved, uint64
count, then per array uint32 magic (0xF993FAC9 or 0xF993FACA), int32 storage type
(0: dense), int32 ndim, int64 dims, int32 device type and id, int32 dtype code,
the raw little-endian data; then uint64 count and per name a uint64 length and
its UTF-8 bytes.

``.ckpt`` (protobuf, ``checkpoint.proto``): repeated ``Value{tag=1, tensor=2}``,
``TensorProto{dims=1 (int64), tensor_type=2 (str), tensor_content=3 (bytes)}``; a
large tensor is stored as several slices under one tag, concatenated here; an
optional trailing ``crc_num`` block is verified.
"""
from __future__ import annotations

import binascii
import struct
from pathlib import Path

import numpy as np

from bench.core.errors import CheckpointError

MAX_DIMS = 8
MXNET_LIST_MAGIC = 0x112
MXNET_ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)
MXNET_DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}
MINDSPORE_DTYPES = {"Float32": np.float32, "Float64": np.float64, "Float16": np.float16, "Int8": np.int8,
                    "Int16": np.int16, "Int32": np.int32, "Int64": np.int64, "UInt8": np.uint8, "Bool": np.bool_}


class _Reader:
    """Bounds-checked reads from an in-memory file."""

    def __init__(self, data: bytes, path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CheckpointError(f"{self.path}: {what} needs {n} bytes at offset {self.pos}, "
                                  f"the file has {len(self.data) - self.pos} left (truncated or corrupt)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


MAX_DIM = 1 << 31   # one axis of a weight tensor


def _checked_shape(dims, itemsize: int, available: int, path, entry: str) -> tuple[int, ...]:
    if len(dims) > MAX_DIMS or any(d < 0 or d > MAX_DIM for d in dims):
        raise CheckpointError(f"{path}: entry {entry!r} declares shape {tuple(dims)}: not a tensor shape")
    nbytes = int(np.prod(dims, dtype=object)) * itemsize
    if nbytes > available:
        raise CheckpointError(f"{path}: entry {entry!r} declares shape {tuple(dims)} ({nbytes} bytes), "
                              f"only {available} bytes remain in the file")
    return tuple(int(d) for d in dims)


def _guarded(reader):
    """Whatever a malformed file makes the parser raise is a CheckpointError naming the file."""
    def read(path) -> dict[str, np.ndarray]:
        try:
            return reader(path)
        except (ValueError, UnicodeDecodeError, struct.error, OverflowError, RecursionError) as e:
            raise CheckpointError(f"cannot read {path}: {type(e).__name__}: {str(e)[:160]}") from None
    read.__doc__, read.__name__ = reader.__doc__, reader.__name__
    return read


@_guarded
def read_mxnet_params(path) -> dict[str, np.ndarray]:
    """name -> array of an ``mx.nd.save``'d dict (dense arrays only)."""
    r = _Reader(Path(path).read_bytes(), path)
    magic, _, count = r.unpack("QQQ", "header")
    if magic != MXNET_LIST_MAGIC:
        raise CheckpointError(f"{path}: not an MXNet parameter file (magic {magic:#x}, expected {MXNET_LIST_MAGIC:#x})")
    if count > r.left // 20:  # each array needs at least 20 header bytes
        raise CheckpointError(f"{path}: declares {count} arrays, the file is too small for them")
    arrays = []
    for i in range(count):
        entry = f"array {i}"
        array_magic, stype = r.unpack("Ii", entry)
        if array_magic not in MXNET_ARRAY_MAGICS or stype != 0:
            raise CheckpointError(f"{path}: {entry}: magic {array_magic:#x}, storage type {stype}; only dense "
                                  "arrays of MXNet >= 1.0 are read")
        (ndim,) = r.unpack("i", entry)
        if not 0 <= ndim <= MAX_DIMS:
            raise CheckpointError(f"{path}: {entry} declares {ndim} dimensions")
        dims = r.unpack(f"{ndim}q", entry) if ndim else ()
        if ndim == 0:
            arrays.append(np.zeros((0,), np.float32))
            continue
        _dev_type, _dev_id, code = r.unpack("iii", entry)
        if code not in MXNET_DTYPES:
            raise CheckpointError(f"{path}: {entry} has dtype code {code}; readable: {sorted(MXNET_DTYPES)}")
        dtype = np.dtype(MXNET_DTYPES[code]).newbyteorder("<")
        shape = _checked_shape(dims, dtype.itemsize, r.left, path, entry)
        arrays.append(np.frombuffer(r.take(int(np.prod(shape)) * dtype.itemsize, entry), dtype).reshape(shape).copy())
    (n_names,) = r.unpack("Q", "name count")
    if n_names != count:
        raise CheckpointError(f"{path}: {count} arrays but {n_names} names; not a name -> array dict")
    names = []
    for i in range(n_names):
        (length,) = r.unpack("Q", f"name {i}")
        try:
            names.append(r.take(length, f"name {i}").decode("utf-8", errors="strict"))
        except UnicodeDecodeError:
            raise CheckpointError(f"{path}: name {i} is not UTF-8") from None
    if r.left:
        raise CheckpointError(f"{path}: {r.left} unexpected bytes after the last name")
    return dict(zip(names, arrays))


def _varint(r: _Reader, what: str) -> int:
    value, shift = 0, 0
    while True:
        (byte,) = r.take(1, what)
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{r.path}: {what}: a varint longer than 10 bytes")


def _fields(data: bytes, path, what: str):
    """(field number, wire type, value) of a protobuf message: varints and length-delimited only."""
    r = _Reader(data, path)
    while r.left:
        key = _varint(r, what)
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, _varint(r, what)
        elif wire == 2:
            yield number, wire, r.take(_varint(r, what), what)
        else:
            raise CheckpointError(f"{path}: {what}: wire type {wire} is not used by checkpoint.proto")


def _tensor(data: bytes, path, tag: str) -> tuple[list[int], str, bytes]:
    dims, dtype, content = [], None, None
    for number, wire, value in _fields(data, path, f"tensor {tag!r}"):
        if number == 1 and wire == 0:
            dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif number == 1 and wire == 2:  # packed dims
            inner = _Reader(value, path)
            while inner.left:
                v = _varint(inner, f"tensor {tag!r}")
                dims.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif number == 2 and wire == 2:
            dtype = value.decode("utf-8", errors="replace")
        elif number == 3 and wire == 2:
            content = value
    if dtype is None or content is None:
        raise CheckpointError(f"{path}: entry {tag!r} lacks a tensor type or content")
    return dims, dtype, content


def _strip_crc(data: bytes, path) -> bytes:
    marker = data.rfind(b"crc_num")
    if marker == -1 or len(data) - marker != len(b"crc_num") + 10:
        return data
    body, expected = data[:marker], int.from_bytes(data[marker + 7:], "big")
    if binascii.crc32(body) != expected:
        raise CheckpointError(f"{path}: crc32 {binascii.crc32(body)} does not match the stored {expected}")
    return body


@_guarded
def read_mindspore_ckpt(path) -> dict[str, np.ndarray]:
    """name -> array of a ``mindspore.save_checkpoint`` file (unencrypted)."""
    data = _strip_crc(Path(path).read_bytes(), path)
    parts: dict[str, list] = {}
    for number, wire, value in _fields(data, path, "checkpoint"):
        if number != 1 or wire != 2:
            raise CheckpointError(f"{path}: not a MindSpore checkpoint (field {number}, wire type {wire}); "
                                  "encrypted checkpoints are not read")
        tag, tensor = None, None
        for n, w, v in _fields(value, path, "value"):
            if n == 1 and w == 2:
                try:
                    tag = v.decode("utf-8", errors="strict")
                except UnicodeDecodeError:
                    raise CheckpointError(f"{path}: an entry name that is not UTF-8") from None
            elif n == 2 and w == 2:
                tensor = v
            elif n == 3:
                raise CheckpointError(f"{path}: map tensors are not read (entry {tag!r})")
        if tag is None or tensor is None:
            raise CheckpointError(f"{path}: a value without a name or a tensor")
        parts.setdefault(tag, []).append(_tensor(tensor, path, tag))
    out = {}
    for tag, slices in parts.items():
        dims, dtype_name = slices[0][0], slices[0][1]
        if dtype_name not in MINDSPORE_DTYPES:
            raise CheckpointError(f"{path}: entry {tag!r} has type {dtype_name!r}; readable: "
                                  f"{', '.join(MINDSPORE_DTYPES)}")
        dtype = np.dtype(MINDSPORE_DTYPES[dtype_name]).newbyteorder("<")
        content = b"".join(s[2] for s in slices)
        shape = _checked_shape(dims, dtype.itemsize, len(content), path, tag)
        if int(np.prod(shape)) * dtype.itemsize != len(content):
            raise CheckpointError(f"{path}: entry {tag!r} declares shape {shape} of {dtype_name} but holds "
                                  f"{len(content)} bytes")
        out[tag] = np.frombuffer(content, dtype).reshape(shape).copy()
    return out
