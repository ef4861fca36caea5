"""The JAX backend's own reader of untrusted files: Flax msgpack checkpoints (``.msgpack``).

Runs where Flax is installed: in JAX's own environment, by ``test_own_environments.py``. Each crafted
file must raise ``CheckpointError`` naming the file, before anything of a declared size is allocated
and without blocking on something that is not a regular file."""
import os
import threading

import numpy as np
import pytest

pytest.importorskip("flax")

import msgpack  # noqa: E402  (Flax's own dependency)

from backends.registry import get_backend  # noqa: E402
from bench.core.errors import CheckpointError  # noqa: E402

from . import protocol_checks as pc  # noqa: E402

ARCH = "resnet18"
NDARRAY = 1  # flax.serialization's msgpack extension code of an array: (shape, dtype name, bytes)


@pytest.fixture(scope="module")
def model():
    return get_backend("jax").create_model(ARCH, 3, image_size=pc.SIZE)


def _array(shape, dtype: bytes, buffer: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(NDARRAY, msgpack.packb((list(shape), dtype, buffer)))


def _file(tmp_path, name: str, tree) -> str:
    path = tmp_path / name
    path.write_bytes(msgpack.packb(tree))
    return str(path)


def test_its_own_checkpoint_round_trips(model, tmp_path):
    path = str(tmp_path / "own.msgpack")
    model.save_weights(path)
    other = get_backend("jax").create_model(ARCH, 3, image_size=pc.SIZE, seed=7)
    other.load_weights(path)
    mine, theirs = model.named_parameters(), other.named_parameters()
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)


def test_truncated_and_foreign_bytes(model, tmp_path):
    path = tmp_path / "own.msgpack"
    model.save_weights(str(path))
    data = path.read_bytes()
    (tmp_path / "cut.msgpack").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.msgpack").write_bytes(b"not a checkpoint at all\n")
    for name in ("cut.msgpack", "text.msgpack"):
        with pytest.raises(CheckpointError, match=f"{name}: not a Flax msgpack checkpoint"):
            model.load_weights(str(tmp_path / name))


def test_not_a_regular_file_is_refused_without_reading(model, tmp_path):
    fifo = tmp_path / "fifo.msgpack"
    os.mkfifo(fifo)
    outcome = []

    def load():  # reading a FIFO with no writer would block for ever
        try:
            model.load_weights(str(fifo))
        except CheckpointError as e:
            outcome.append(str(e))
    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert outcome and "fifo.msgpack: not a Flax checkpoint (a regular file" in outcome[0], outcome
    huge = tmp_path / "huge.msgpack"
    with open(huge, "wb") as f:
        f.truncate(5 << 30)  # sparse: no disk used, but larger than any checkpoint the reader accepts
    with pytest.raises(CheckpointError, match="huge.msgpack: not a Flax checkpoint .*at most 4 GiB"):
        model.load_weights(str(huge))


def test_crafted_trees_and_arrays(model, tmp_path):
    f4 = np.zeros(4, np.float32).tobytes()
    cases = {
        "list.msgpack": ([1, 2, 3], "holds {'params'"),
        "noparams.msgpack": ({"batch_stats": {}}, "holds {'params'"),
        "ints.msgpack": ({"params": {"fc": {"bias": _array([4], b"<i4", f4)}}}, "params/fc/bias is not a floating"),
        "text.msgpack": ({"params": {"fc": {"bias": "0.0"}}}, "params/fc/bias is not a floating"),
        "object.msgpack": ({"params": {"fc": {"bias": _array([1], b"O", f4)}}}, "not a Flax msgpack checkpoint"),
        "dtype.msgpack": ({"params": {"fc": {"bias": _array([1], b"no-such-type", f4)}}},
                          "not a Flax msgpack checkpoint"),
        # a declared shape far beyond the bytes that follow: refused by the reshape, nothing allocated
        "shape.msgpack": ({"params": {"fc": {"bias": _array([10 ** 12], b"<f4", f4)}}},
                          "not a Flax msgpack checkpoint"),
        "unknown.msgpack": ({"params": {"fc": {"bias": _array([4], b"<f4", f4)}, "evil": {"w": _array([4], b"<f4", f4)}}},
                            "unexpected Flax variable params/evil/w"),
        "partial.msgpack": ({"params": {"fc": {"bias": _array([4], b"<f4", f4)}}}, "does not fit model resnet18"),
    }
    for name, (tree, match) in cases.items():
        with pytest.raises(CheckpointError, match=f"{name}.*({match})"):
            model.load_weights(_file(tmp_path, name, tree))


def test_nesting_too_deep_for_the_decoder(model, tmp_path):
    depth = 200_000
    path = tmp_path / "deep.msgpack"
    path.write_bytes(b"\x81\xa6params" + b"\x91" * depth + b"\xc0")  # {"params": [[[...None...]]]}
    with pytest.raises(CheckpointError, match="deep.msgpack"):
        model.load_weights(str(path))
