"""Hostile inputs II: tiny files that hung the readers or exhausted memory, and files whose
errors were not CheckpointErrors. Each is read in a child process under a memory limit
(RLIMIT_AS) and a time limit; the child must answer with one CheckpointError naming the file."""
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.weights.canonical import META_KEY, write_canonical

ROOT = Path(__file__).resolve().parents[3]
MEMORY = 1 << 30       # bytes of address space above the child's own at start
TIMEOUT = 60           # seconds
READ = """
import resource, sys
from bench.core.errors import BenchError
from bench.weights.files import read_weights
soft = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (soft, soft))
try:
    read_weights(sys.argv[1])
    print("READ")
except BenchError as e:
    print("BENCH", type(e).__name__, e)
except BaseException as e:
    print("OTHER", type(e).__name__, str(e)[:300])
"""


def read_in_child(path: Path) -> str:
    base = 600 << 20  # the interpreter with NumPy mapped: a generous start
    r = subprocess.run([sys.executable, "-c", READ, str(path), str(base + MEMORY)], cwd=ROOT, capture_output=True,
                       text=True, timeout=TIMEOUT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    return r.stdout.strip() or r.stderr[-500:]


def dag_pickle(depth: int = 80, use: str = "key") -> bytes:
    """t0 = (), t(k+1) = (tk, tk): 2^depth nodes once references are expanded, 1.5 KB of pickle."""
    out = bytearray(b"\x80\x02)q\x00")                      # PROTO 2, EMPTY_TUPLE, BINPUT 0
    for k in range(depth):
        out += b"h" + bytes([k]) + b"h" + bytes([k]) + b"\x86q" + bytes([k + 1])  # BINGET k x2, TUPLE2, BINPUT
    last = b"h" + bytes([depth])
    if use == "key":
        out += b"}" + last + b"N" + b"s"                   # EMPTY_DICT, key, None, SETITEM
    else:
        out += last + b"Q"                                 # BINPERSID
    return bytes(out + b".")


def legacy_with(first: bytes) -> bytes:
    return first + pickle.dumps(1001, protocol=2)


@pytest.mark.parametrize("fmt,use", [("legacy", "key"), ("zip", "key"), ("zip", "persid")])
def test_a_reference_dag_in_a_pickle_is_refused_at_once(tmp_path, fmt, use):
    path = tmp_path / f"dag-{use}.pth"
    if fmt == "legacy":
        path.write_bytes(legacy_with(dag_pickle(use=use)))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", dag_pickle(use=use))
    assert path.stat().st_size < 4000
    out = read_in_child(path)
    assert out.startswith("BENCH CheckpointError") and path.name in out and "objects nested" in out, out


@pytest.mark.parametrize("n", [20_000_000, 50_000_000])
def test_a_compressed_pickle_of_millions_of_ints_is_refused(tmp_path, n):
    chunk = b"K\x00" * 1000
    body = b"\x80\x02]q\x00(" + chunk * (n // 1000) + b"e."   # EMPTY_LIST, MARK, BININT1 0 ..., APPENDS
    path = tmp_path / "ints.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", body)
    assert path.stat().st_size < 200_000
    out = read_in_child(path)
    assert out.startswith("BENCH CheckpointError") and "ints.pth" in out, out
    assert "opcodes" in out or "declares" in out


def _npz_claiming(tmp_path, claim: int) -> Path:
    """A stored .npy member whose zip headers claim ``claim`` bytes while 12 are present."""
    path = tmp_path / "claim.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(claim // 4, np.float32))
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("w.npy")
        buf = __import__("io").BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        z.writestr(info, buf.getvalue() + b"\x00" * 12)
    raw = bytearray(path.read_bytes())
    for sig, offsets in ((b"PK\x03\x04", (18, 22)), (b"PK\x01\x02", (20, 24))):  # local and central headers
        at = raw.find(sig)
        for off in offsets:
            raw[at + off:at + off + 4] = struct.pack("<I", min(claim, 0xFFFFFFFF))
    path.write_bytes(bytes(raw))
    return path


def test_an_npz_member_claiming_gigabytes_is_refused_before_allocating(tmp_path):
    path = _npz_claiming(tmp_path, 4_000_000_000)
    out = read_in_child(path)
    assert out.startswith("BENCH CheckpointError") and "claim.npz" in out, out


@pytest.mark.parametrize("meta,match", [("[" * 100_000 + "]" * 100_000, "not JSON"),
                                        (json.dumps({"format": "bench-canonical/1"}), "names no architecture")])
def test_malformed_canonical_metadata_is_a_checkpoint_error(tmp_path, meta, match):
    path = tmp_path / "meta.npz"
    write_canonical(path, "resnet18", {"w": np.zeros(2, np.float32)})
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files}
    arrays[META_KEY] = np.array(meta)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    out = read_in_child(path)
    assert out.startswith("BENCH CheckpointError") and match in out, out


def _params(path, dims=(2,), name=b"w"):
    data = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", 0xF993FACA, 0, len(dims))
    data += struct.pack(f"<{len(dims)}q", *dims) + struct.pack("<iii", 1, 0, 0)
    data += b"\x00" * (4 * int(np.prod(dims))) if np.prod(dims) < 100 else b""
    data += struct.pack("<Q", 1) + struct.pack("<Q", len(name)) + name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dims,name,match", [((0, 2 ** 62), b"w", "shape"), ((2,), b"\xff\xfe", "UTF-8")])
def test_params_with_impossible_dims_or_names_are_checkpoint_errors(tmp_path, dims, name, match):
    out = read_in_child(_params(tmp_path / "x.params", dims, name))
    assert out.startswith("BENCH CheckpointError") and match in out and "x.params" in out, out


def test_the_real_files_still_read_within_the_limits(tmp_path):
    path = tmp_path / "ok.npz"
    write_canonical(path, "resnet18", {"w": np.ones((64, 64), np.float32)})
    assert read_in_child(path) == "READ"
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # the parent is not limited
