"""Fuzz every reader of an untrusted file with Hypothesis: ``python -m tests.fuzz_readers SECONDS SEED``.

Two halves of the time budget:

* bytes: valid files of every format (.pth in both of torch's layouts, canonical .npz, MXNet
  .params, MindSpore .ckpt, a run record) are mutated (bytes overwritten, inserted, the file
  cut) and read;
* values: valid JSON records of every kind the commands read (run, study, overhead, tune,
  profile, and a pytest-benchmark result with per-process samples) get one field replaced by
  any JSON value (or removed), then go through what a user runs on them: ``bench report``
  (markdown, and the HTML site), ``bench gate`` against the unmutated record, ``bench overhead
  --from``.

All under a memory limit (RLIMIT_AS) with a per-case alarm. A case fails on a hang, on a
MemoryError (an allocation beyond the limit) or on any exception that is not a BenchError.
Prints one line of counts per half; exits 1 with the failing cases' descriptions.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import resource
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASE_SECONDS = 5
MEMORY = 1536 << 20


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def ckpt_bytes() -> bytes:
    content = np.arange(6, dtype=np.float32).tobytes()
    tensor = _varint(1 << 3) + _varint(2) + _varint(1 << 3) + _varint(3) + _field(2, b"Float32") + _field(3, content)
    return _field(1, _field(1, b"conv.weight") + _field(2, tensor))


def params_bytes() -> bytes:
    data = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", 0xF993FACA, 0, 2) + struct.pack("<2q", 2, 3)
    data += struct.pack("<iii", 1, 0, 0) + np.arange(6, dtype=np.float32).tobytes()
    return data + struct.pack("<QQ", 1, 6) + b"conv.w"


def seeds(tmp: Path) -> dict[str, bytes]:
    from bench.records.store import new_record
    from bench.plan.config import RunConfig
    from bench.weights.canonical import write_canonical
    out = {".params": params_bytes(), ".ckpt": ckpt_bytes()}
    write_canonical(tmp / "c.npz", "resnet18", {"conv1.weight": np.ones((2, 3, 1, 1), np.float32)})
    out[".npz"] = (tmp / "c.npz").read_bytes()
    rec = new_record(RunConfig())
    rec.update(status="ok", curve=[{"epoch": 1, "cum_train_s": 1.0, "eval_acc": 0.5, "eval_correct": 5,
                                   "n_eval": 10}], accuracy={"final": 0.5, "final_ci95": [0.2, 0.8]})
    out[".json"] = json.dumps(rec).encode()
    try:
        import torch
        state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
        for name, zip_format in (("zip.pth", True), ("legacy.pth", False)):
            buf = io.BytesIO()
            torch.save(state, buf, _use_new_zipfile_serialization=zip_format)
            out[name] = buf.getvalue()
    except ImportError:
        pass
    return out


def records(tmp: Path) -> dict[str, tuple[str, dict]]:
    """kind -> (file name, a valid JSON document of it) for the value half."""
    from tests.bench.records.test_kinds import BUILT
    from tests.bench.report.test_report_groups import record
    out = {kind: (f"{kind}.json", build()) for kind, build in BUILT.items()}
    out["run"] = ("run.json", record(seed=0, backend="torch", model="resnet18"))
    gate_check = Path(__file__).resolve().parents[1] / "results" / "gate-check"
    out["pytest-benchmark"] = ("pytest-benchmark.json", json.loads(next(iter(sorted(gate_check.glob("0*.json")))).read_text()))
    return out


def paths_of(doc, at=()) -> list[tuple]:
    """Every place in a JSON document a value sits, as a key path."""
    found = [at] if at else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += paths_of(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += paths_of(v, at + (i,))
    return found


def use(kind: str, name: str, doc: dict, tmp: Path) -> None:
    """What a user runs on a record of ``kind`` found among others: report, site, gate (and
    overhead tables); a non-zero exit is fine, an exception other than BenchError is not."""
    from bench.cli import main
    base, case = tmp / "base", tmp / "case"
    for folder in (base, case):
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    (case / name).write_text(json.dumps(doc), encoding="utf-8")
    if kind == "pytest-benchmark":
        (base / name).write_text(json.dumps(_originals[kind][1]), encoding="utf-8")
        commands = [["gate", str(base / name), str(case / name)]]
    else:
        (base / name).write_text(json.dumps(_originals[kind][1]), encoding="utf-8")
        commands = [["report", "--format", "markdown", str(case)],
                    ["report", "--format", "html", str(tmp / "site"), str(case)],
                    ["gate", str(base), str(case)]]
        if kind == "overhead":
            commands.append(["overhead", "--from", str(case), "--format", "markdown"])
    sink = io.StringIO()
    for argv in commands:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            main(argv)


_originals: dict[str, tuple[str, dict]] = {}


def read(path: Path):
    from bench.records.store import read_record
    from bench.weights.files import read_weights
    return read_record(path) if path.suffix == ".json" else read_weights(path)


def main(seconds: float, seed: int) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from bench.core.errors import BenchError
    tmp = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    files = seeds(tmp)
    names = sorted(files)
    counts = {"cases": 0, "refused": 0, "read": 0}
    failures: list[str] = []
    soft = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 + MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (soft + (2 << 30), soft + (2 << 30)))
    deadline = time.time() + seconds

    def alarm(*_):
        raise TimeoutError("case took too long")
    signal.signal(signal.SIGALRM, alarm)

    edit = st.tuples(st.sampled_from(["set", "insert", "cut"]), st.floats(0, 1), st.binary(min_size=1, max_size=8))

    def case(name, edits):
        data = bytearray(files[name])
        for how, where, blob in edits:
            at = int(where * len(data))
            if how == "set":
                data[at:at + len(blob)] = blob
            elif how == "insert":
                data[at:at] = blob
            else:
                del data[at:]
        path = tmp / f"case{name[name.rfind('.'):]}" if name.endswith(".pth") else tmp / f"case{name}"
        path.write_bytes(bytes(data))
        counts["cases"] += 1
        signal.alarm(CASE_SECONDS)
        try:
            read(path)
            counts["read"] += 1
        except BenchError:
            counts["refused"] += 1
        except BaseException as e:  # noqa: BLE001 - a hang, a blow-up or an unexpected error: a finding
            failures.append(f"{name} {edits!r}: {type(e).__name__}: {str(e)[:200]}")
        finally:
            signal.alarm(0)

    def batches(test, strategies, until):  # batches of 200 generated cases, each its own seed, until ``until``
        batch = 0
        while time.time() < until:
            run = settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate],
                           suppress_health_check=list(HealthCheck))(given(*strategies)(test))
            hypothesis_seed(seed * 100_000 + batch)(run)()
            batch += 1

    batches(case, (st.sampled_from(names), st.lists(edit, min_size=1, max_size=6)), time.time() + seconds / 2)
    print(f"fuzz bytes (seed {seed}): {counts['cases']} cases over {len(names)} formats in {seconds / 2:g} s: "
          f"{counts['refused']} refused, "
          f"{counts['read']} read, {len(failures)} failures")

    _originals.update(records(tmp))
    kinds = sorted(_originals)
    values = {"cases": 0}
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from([1e308, -1.0, 0, 10 ** 9, "99999", "", "<script>x</script>", "../../etc/passwd"])
        | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6)

    def value_case(kind, where, value, remove):
        name, original = _originals[kind]
        doc = copy.deepcopy(original)
        spots = paths_of(doc)
        at = spots[int(where * (len(spots) - 1))]
        parent = doc
        for key in at[:-1]:
            parent = parent[key]
        if remove and isinstance(parent, dict):
            del parent[at[-1]]
        else:
            parent[at[-1]] = value
        values["cases"] += 1
        signal.alarm(CASE_SECONDS * 4)
        try:
            use(kind, name, doc, tmp)
        except BenchError:
            pass
        except BaseException as e:  # noqa: BLE001 - a hang, a blow-up or an unexpected error: a finding
            import traceback
            frame = traceback.extract_tb(e.__traceback__)[-1]
            failures.append(f"{kind} at {at!r} = {str(value)[:60]!r}{' (removed)' if remove else ''}: "
                            f"{type(e).__name__}: {str(e)[:200]} ({Path(frame.filename).name}:{frame.lineno})")
        finally:
            signal.alarm(0)

    before = len(failures)
    batches(value_case, (st.sampled_from(kinds), st.floats(0, 1), json_value, st.booleans()), deadline)
    print(f"fuzz values (seed {seed}): {values['cases']} cases over {len(kinds)} record kinds "
          f"({', '.join(kinds)}) through report, site, gate and overhead: {len(failures) - before} failures")
    print(f"fuzz (seed {seed}): {len(failures)} failures")
    for f in failures[:20]:
        print("  FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("BENCH_ARCHITECTURES", "tests.fake_backend")  # the record kinds' fake_mlp
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2])))
