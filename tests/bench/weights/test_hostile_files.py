"""Crafted weight files for every format the suite reads: nothing runs, nothing is read out of
bounds, nothing is allocated at a declared size before that size is checked against the file.

Formats: legacy and zip ``.pth``, canonical ``.npz``, MXNet ``.params``, MindSpore ``.ckpt``.
Each hostile file must raise ``CheckpointError`` naming the file; code-execution payloads
must leave no marker file behind.
"""
import io
import os
import pickle
import resource
import struct
import zipfile

import numpy as np
import pytest

from bench.weights.checkpoints import read_mindspore_ckpt, read_mxnet_params
from bench.core.errors import CheckpointError
from bench.weights.pth import LEGACY_MAGIC, read_state_dict
from bench.weights.canonical import META_KEY, read_canonical, write_canonical

from .test_pth import _pickle_state, _state, _Tensor, fake_torch  # noqa: F401  (fixture)


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _legacy(path, headers=None, body=b"", keys=None, storages=(), key_pickle=None):
    headers = headers or [LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}]
    with open(path, "wb") as f:
        for h in headers:
            f.write(h if isinstance(h, bytes) else pickle.dumps(h, protocol=2))
        f.write(body)
        f.write(key_pickle if key_pickle is not None else pickle.dumps(keys or [], protocol=2))
        for numel, data in storages:
            f.write(np.int64(numel).tobytes() + data)
    return path


@pytest.mark.parametrize("where", [0, 1, 2, "keys"])
def test_legacy_header_pickles_cannot_run_code(tmp_path, where):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Payload(marker), protocol=2)
    headers = [LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}]
    if where == "keys":
        path = _legacy(tmp_path / "evil.pth", body=pickle.dumps({}, protocol=2), key_pickle=evil)
    else:
        headers[where] = evil
        path = _legacy(tmp_path / "evil.pth", headers=headers, body=pickle.dumps({}, protocol=2))
    with pytest.raises(CheckpointError, match="evil.pth.*refusing to unpickle"):
        read_state_dict(path)
    assert not marker.exists()


def test_state_dict_pickle_cannot_run_code_in_either_format(tmp_path):
    marker = tmp_path / "pwned"
    body = pickle.dumps({"w": Payload(marker)}, protocol=2)
    legacy = _legacy(tmp_path / "a.pth", body=body)
    zipped = tmp_path / "b.pth"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", body)
    for path in (legacy, zipped):
        with pytest.raises(CheckpointError, match="refusing to unpickle"):
            read_state_dict(path)
    assert not marker.exists()


def _zip_pth(path, tensors, storages: dict, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", tensors)
        for key, raw in storages.items():
            z.writestr(zipfile.ZipInfo(f"archive/data/{key}"), raw, compress_type=compress)
    return path


@pytest.mark.parametrize("offset,shape,stride,what", [
    (5, (2, 3), (3, 1), "offset past the storage"),
    (0, (2, 4), (4, 1), "shape past the storage"),
    (0, (2, 3), (1000, 1), "stride past the storage"),
    (0, (10**12,), (0,), "a huge view of one element"),
    (-2, (2,), (1,), "negative offset"),
    (0, (2, 3), (-3, 1), "negative stride"),
])
def test_views_outside_their_storage_are_refused(fake_torch, tmp_path, offset, shape, stride, what):  # noqa: F811
    data = np.arange(6, dtype=np.float32)
    body, refs = _pickle_state(fake_torch, {"w": _Tensor(fake_torch, "0", data, offset, shape, stride)})
    path = _zip_pth(tmp_path / "oob.pth", body, {"0": data.tobytes()})
    before = _peak_mb()
    with pytest.raises(CheckpointError, match="oob.pth.*entry 'w'"):
        read_state_dict(path)
    assert _peak_mb() - before < 200, what


def test_truncated_and_huge_storages(fake_torch, tmp_path):  # noqa: F811
    data = np.arange(6, dtype=np.float32)
    body, _ = _pickle_state(fake_torch, {"w": _Tensor(fake_torch, "0", data, 0, (2, 3), (3, 1))})
    short = _zip_pth(tmp_path / "short.pth", body, {"0": data.tobytes()[:10]})
    with pytest.raises(CheckpointError, match="short.pth.*holds 10 bytes.*declares 24"):
        read_state_dict(short)
    bomb = _zip_pth(tmp_path / "bomb.pth", body, {"0": data.tobytes()}, compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="compressed"):
        read_state_dict(bomb)
    missing = _zip_pth(tmp_path / "missing.pth", body, {})
    with pytest.raises(CheckpointError, match="archive/data/0 is missing"):
        read_state_dict(missing)
    # legacy: a storage that declares 10**15 elements in a 100-byte file
    huge_body, _ = _pickle_state(fake_torch, {"w": _Tensor(fake_torch, "0", np.zeros(10**15 // 10**15), 0, (1,), (1,))})
    huge = _legacy(tmp_path / "huge.pth", body=huge_body, keys=["0"], storages=[(10**15, b"\0" * 8)])
    before = _peak_mb()
    with pytest.raises(CheckpointError, match="huge.pth: storage '0' declares 1000000000000000 elements"):
        read_state_dict(huge)
    assert _peak_mb() - before < 200


def test_storage_types_outside_the_allow_list(tmp_path):
    body = (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02("
            b"(X\x07\x00\x00\x00storageq\x03ctorch\nComplexFloatStorage\nq\x04X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tq\x05"
            b"QK\x00K\x01\x85K\x01\x85\x89}tRq\x06s.")
    path = _zip_pth(tmp_path / "complex.pth", body, {"0": b"\0" * 8})
    with pytest.raises(CheckpointError, match="refusing to unpickle torch.ComplexFloatStorage"):
        read_state_dict(path)


# --- canonical .npz ------------------------------------------------------------------------

def _npz_with(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return path


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def _meta() -> bytes:
    return _npy(np.array('{"format": "bench-canonical/1", "arch": "resnet18"}'))


def test_npz_object_arrays_never_unpickle(tmp_path):
    marker = tmp_path / "pwned"
    path = _npz_with(tmp_path / "evil.npz", {f"{META_KEY}.npy": _meta(),
                                            "w.npy": _npy(np.array([Payload(marker)], dtype=object))})
    with pytest.raises(CheckpointError, match="evil.npz: entry 'w' has dtype \\|O"):
        read_canonical(path)
    assert not marker.exists()


def test_npz_huge_declared_shape_is_refused_before_allocation(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    path = _npz_with(tmp_path / "huge.npz", {f"{META_KEY}.npy": _meta(), "w.npy": header.getvalue() + b"\0" * 64})
    before = _peak_mb()
    with pytest.raises(CheckpointError, match="huge.npz: entry 'w' declares shape \\(1000000000000,\\)"):
        read_canonical(path)
    assert _peak_mb() - before < 200


@pytest.mark.parametrize("array,match", [(np.arange(4, dtype=np.int64), "dtype <i8"),
                                         (np.zeros(2, np.complex64), "dtype <c8")])
def test_npz_wrong_dtypes(tmp_path, array, match):
    path = _npz_with(tmp_path / "dtype.npz", {f"{META_KEY}.npy": _meta(), "w.npy": _npy(array)})
    with pytest.raises(CheckpointError, match=match):
        read_canonical(path)


def test_npz_truncated_and_foreign(tmp_path):
    good = tmp_path / "good.npz"
    write_canonical(good, "resnet18", {"w": np.ones((64, 64), np.float32)})
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="cut.npz"):
        read_canonical(cut)
    foreign = _npz_with(tmp_path / "foreign.npz", {"w.npy": _npy(np.ones(3, np.float32))})
    with pytest.raises(CheckpointError, match="without the '__bench__' entry"):
        read_canonical(foreign)
    stray = _npz_with(tmp_path / "stray.npz", {f"{META_KEY}.npy": _meta(), "run.sh": b"rm -rf /"})
    with pytest.raises(CheckpointError, match="entry 'run.sh' is not an array"):
        read_canonical(stray)


# --- MXNet .params ------------------------------------------------------------------------

def _params(arrays: list[tuple[tuple, int, bytes]], names: list[str]) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays))
    for shape, code, data in arrays:
        out += struct.pack("<Iii", 0xF993FAC9, 0, len(shape)) + struct.pack(f"<{len(shape)}q", *shape)
        out += struct.pack("<iii", 1, 0, code) + data
    out += struct.pack("<Q", len(names))
    for n in names:
        out += struct.pack("<Q", len(n)) + n.encode()
    return out


def test_params_reader_matches_mxnet_and_refuses_crafted_files(tmp_path):
    ok = tmp_path / "ok.params"
    ok.write_bytes(_params([((2, 3), 0, np.arange(6, dtype=np.float32).tobytes())], ["w"]))
    assert np.array_equal(read_mxnet_params(ok)["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    cases = {
        "huge": (_params([((10**6, 10**6), 0, b"\0" * 16)], ["w"]), "declares shape \\(1000000, 1000000\\)"),
        "truncated": (_params([((2, 3), 0, b"\0" * 8)], ["w"]), "declares shape|needs"),
        "dtype": (_params([((2,), 99, b"\0" * 8)], ["w"]), "dtype code 99"),
        "names": (_params([((1,), 0, b"\0" * 4)], ["w", "x"]), "1 arrays but 2 names"),
        "magic": (b"\x00" * 64, "not an MXNet parameter file"),
        "count": (struct.pack("<QQQ", 0x112, 0, 10**15), "declares 1000000000000000 arrays"),
        "dims": (struct.pack("<QQQIii", 0x112, 0, 1, 0xF993FAC9, 0, 10**6) + b"\0" * 64, "declares 1000000 dimensions"),
    }
    before = _peak_mb()
    for name, (raw, match) in cases.items():
        path = tmp_path / f"{name}.params"
        path.write_bytes(raw)
        with pytest.raises(CheckpointError, match=f"{name}.params.*({match})"):
            read_mxnet_params(path)
    assert _peak_mb() - before < 200


# --- MindSpore .ckpt ----------------------------------------------------------------------

def _varint(v: int) -> bytes:
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _ckpt(tag: str, dims: list[int], dtype: str, content: bytes) -> bytes:
    tensor = b"".join(_varint(1 << 3) + _varint(d) for d in dims) + _field(2, dtype.encode()) + _field(3, content)
    return _field(1, _field(1, tag.encode()) + _field(2, tensor))


def test_ckpt_reader_refuses_crafted_files(tmp_path):
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(_ckpt("w", [2, 2], "Float32", np.arange(4, dtype=np.float32).tobytes()))
    assert np.array_equal(read_mindspore_ckpt(ok)["w"], np.arange(4, dtype=np.float32).reshape(2, 2))
    cases = {
        "huge": (_ckpt("w", [10**6, 10**6], "Float32", b"\0" * 16), "declares shape \\(1000000, 1000000\\)"),
        "short": (_ckpt("w", [2, 2], "Float32", b"\0" * 12), "declares shape|holds 12 bytes"),
        "dtype": (_ckpt("w", [2], "Complex64", b"\0" * 16), "type 'Complex64'"),
        "length": (_field(1, b"\x0a\xff\xff\xff\x0f"), "needs"),
        "foreign": (b"\x08\x01\x10\x02", "not a MindSpore checkpoint"),
        "negative": (_ckpt("w", [2**64 - 1], "Float32", b"\0" * 4), "not a tensor shape"),
    }
    for name, (raw, match) in cases.items():
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(raw)
        with pytest.raises(CheckpointError, match=f"{name}.ckpt.*({match})"):
            read_mindspore_ckpt(path)
    bad_crc = tmp_path / "crc.ckpt"
    bad_crc.write_bytes(ok.read_bytes() + b"crc_num" + (12345).to_bytes(10, "big"))
    with pytest.raises(CheckpointError, match="crc32"):
        read_mindspore_ckpt(bad_crc)


def test_a_hostile_file_through_the_cli_is_one_line_and_runs_nothing(fake_backend, image_folder, tmp_path, capsys):
    from bench.cli import main
    marker = tmp_path / "pwned"
    path = _legacy(tmp_path / "weights.pth", headers=[pickle.dumps(Payload(marker), protocol=2)])
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder), "--arms", "finetune",
            "--pretrained", str(path), "--image-size", "8", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "weights.pth" in err and "refusing to unpickle" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def _declared_deflated(path):
    """The archive's central directory says every member is deflated while their bytes are stored: what
    a zip reader inflates is no deflate stream (zlib.error, found by the fuzzer)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 10:at + 12] = struct.pack("<H", zipfile.ZIP_DEFLATED)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def test_members_that_do_not_inflate_are_refused(fake_torch, tmp_path):  # noqa: F811
    data = np.arange(6, dtype=np.float32)
    body, _ = _pickle_state(fake_torch, {"w": _Tensor(fake_torch, "0", data, 0, (2, 3), (3, 1))})
    pth = _declared_deflated(_zip_pth(tmp_path / "inflate.pth", body, {"0": data.tobytes()}))
    with pytest.raises(CheckpointError, match="inflate.pth.*error"):
        read_state_dict(pth)
    npz = tmp_path / "inflate.npz"
    write_canonical(npz, "resnet18", {"w": np.ones((64, 64), np.float32)})
    with pytest.raises(CheckpointError, match="inflate.npz"):
        read_canonical(_declared_deflated(npz))
