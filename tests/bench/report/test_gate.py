"""`bench gate`: a slowdown fails only when significant over processes and beyond the factor."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.report.gate import exit_status, gate, render_gate, samples

ROOT = Path(__file__).parents[3]


def overhead(harness, native, backend="torch", size=32, contended=False):
    spec = {"backend": backend, "model": "resnet18", "image_size": size, "strategy": "full", "batch_size": 16,
            "precision": "fp32", "device": "cpu", "design": "interleaved", "rounds": len(harness)}
    env = {"cpu": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2"], "frameworks": {backend: "1.0"},
           "git": {"commit": "c" * 40, "dirty": False}}
    return {"schema_version": 2, "kind": "overhead", "created": "2026-12-05T00:00:00Z", "spec": spec,
            "environment": env,
            "harness": {"round_medians_ms": list(harness), "contended": contended, "errors": []},
            "native": {"round_medians_ms": list(native), "contended": False, "errors": []},
            "round_ratios": [h / n for h, n in zip(harness, native)]}


def processes(rng, n, ms, spread=0.15):
    """Per-process medians: each process runs at its own speed, up to ±spread (measured here: ±15%)."""
    speed = rng.uniform(1 - spread, 1 + spread, n)
    return ms * speed, ms * speed * rng.uniform(0.99, 1.01, n)  # harness, native (paired: same process)


def verdicts(base, cand):
    return {(r["configuration"].split()[0], r["measure"]): r["verdict"]
            for r in gate(samples([], base), samples([], cand))}


def test_a_planted_slowdown_fails_and_unchanged_code_passes():
    rng = np.random.default_rng(0)
    for _ in range(3):
        h, n = processes(rng, 6, 40.0, spread=0.05)
        base = [overhead(h, n)]
        h2, n2 = processes(rng, 6, 40.0, spread=0.05)
        assert "REGRESSION" not in verdicts(base, [overhead(h2, n2)]).values()
        planted = verdicts(base, [overhead(h2 * 1.2, n2)])   # the suite's step 20% slower, the framework's not
        assert planted[("torch", "harness ms")] == "REGRESSION"
        assert planted[("torch", "harness/native")] == "REGRESSION"
        assert planted[("torch", "native ms")] != "REGRESSION"


def test_a_significant_change_under_the_factor_does_not_fail():
    base = [overhead([40.0, 40.2, 40.1, 39.9, 40.3], [40.0] * 5)]
    cand = [overhead([42.0, 42.2, 42.1, 41.9, 42.3], [42.0] * 5)]   # 5% slower, every process
    got = verdicts(base, cand)
    assert got[("torch", "harness ms")] == "slower, but within 1.1x"


def test_too_few_processes_cannot_resolve_and_contended_processes_are_left_out():
    got = verdicts([overhead([40, 41, 39], [40, 41, 39])], [overhead([60, 61, 59], [40, 41, 39])])
    assert got[("torch", "harness ms")].startswith("cannot resolve: 3 and 3 processes")
    rows = gate(samples([], [overhead([40] * 5, [40] * 5)]), samples([], [overhead([80] * 5, [40] * 5, contended=True)]))
    got = {r["measure"]: r for r in rows}
    assert got["native ms"]["verdict"] == "unchanged"
    for measure in ("harness ms", "harness/native"):  # reported, never dropped: a gate cannot pass what it cannot see
        assert got[measure]["verdict"] == "MISSING in candidate: its 5 process(es) were timed while the CPU was busy"
        assert got[measure]["left_out"] == (0, 5)
    assert exit_status(rows) == 4
    assert "10 candidate sample(s) of processes timed while the CPU was busy were left out" in render_gate(rows)


def test_a_configuration_missing_from_the_candidate_fails():
    base = samples([], [overhead([40] * 5, [40] * 5), overhead([40] * 5, [40] * 5, backend="mxnet")])
    rows = gate(base, samples([], [overhead([40] * 5, [40] * 5)]))
    assert {r["configuration"].split()[0] for r in rows if r["verdict"] == "MISSING in candidate"} == {"mxnet"}
    assert exit_status(rows) == 4


def test_peak_memory_is_gated_with_its_own_factor():
    def with_memory(peaks, design="interleaved"):
        rec = overhead([40.0, 40.5, 39.5, 40.2, 39.8], [40.0] * 5)
        rec["spec"]["design"] = design
        rec["harness"]["memory"] = [{"peak_rss_mb": p, "import_rss_mb": 300.0} for p in peaks]
        return rec
    base = [with_memory([600, 601, 600.5, 599.5, 600.2])]
    rows = {r["measure"]: r for r in gate(samples([], base), samples([], [with_memory([648, 649, 648.5, 647, 650])]))}
    assert rows["peak RSS MiB"]["verdict"] == "REGRESSION" and rows["peak RSS MiB"]["factor"] == 1.05
    rows = {r["measure"]: r for r in gate(samples([], base), samples([], [with_memory([648, 649, 648.5, 647, 650])]),
                                          memory_factor=1.10)}
    assert rows["peak RSS MiB"]["verdict"] == "slower, but within 1.1x"
    separate = samples([], [with_memory([600] * 5, design="processes")])
    assert ("torch resnet18 32px full fp32 b16 cpu", "harness peak RSS MiB") in separate


def test_many_processes_do_not_overflow():
    rng = np.random.default_rng(2)
    a, b = rng.normal(40, 1, 600), rng.normal(48, 1, 600)
    rows = gate(samples([], [overhead(a, a)]), samples([], [overhead(b, a)]))
    assert {r["measure"]: r["verdict"] for r in rows}["harness ms"] == "REGRESSION"


def test_render_names_what_moved():
    h, n = [40, 41, 39, 40, 42], [40, 41, 39, 40, 42]
    text = render_gate(gate(samples([], [overhead(h, n)]), samples([], [overhead([x * 1.3 for x in h], n)])))
    assert "2 regression(s): torch resnet18 32px full fp32 b16 cpu harness ms 1.30x" in text


def test_cli_exit_status(tmp_path):
    rng = np.random.default_rng(1)
    h, n = processes(rng, 5, 40.0, spread=0.03)
    for name, recs in (("base", [overhead(h, n)]), ("same", [overhead(h[::-1], n[::-1])]),
                       ("slow", [overhead(h * 1.25, n)])):
        (tmp_path / name).mkdir()
        for i, rec in enumerate(recs):
            (tmp_path / name / f"{i}.json").write_text(json.dumps(rec))
    run = lambda a, b: subprocess.run([sys.executable, "-m", "bench", "gate", str(tmp_path / a), str(tmp_path / b)],  # noqa: E731
                                      capture_output=True, text=True, cwd=ROOT)
    same, slow = run("base", "same"), run("base", "slow")
    assert same.returncode == 0 and "no regression" in same.stdout
    assert slow.returncode == 1 and "REGRESSION" in slow.stdout
    (tmp_path / "empty").mkdir()
    empty = run("base", "empty")
    assert empty.returncode != 0 and "no run or overhead records" in empty.stderr


def test_the_published_overhead_records_pass_against_themselves():
    from bench.records.store import read_records
    recs, problems = read_records([ROOT / "results" / "overhead"], "overhead")
    assert recs and not problems
    rows = gate(samples([], recs), samples([], recs))
    assert rows and all(r["verdict"] in ("unchanged",) or r["verdict"].startswith("cannot resolve") for r in rows)


def test_the_same_record_on_both_sides_is_refused(tmp_path):
    rng = np.random.default_rng(3)
    h, n = processes(rng, 5, 40.0, spread=0.03)
    base, cand = tmp_path / "base", tmp_path / "cand"
    base.mkdir(), cand.mkdir()
    (base / "0.json").write_text(json.dumps(overhead(h, n)))
    (cand / "0.json").write_text(json.dumps(overhead(h, n)))        # the baseline's record, copied
    (cand / "1.json").write_text(json.dumps(overhead(h * 2, n)))    # a real 2x regression beside it
    run = subprocess.run([sys.executable, "-m", "bench", "gate", str(base), str(cand)], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2 and "1 record(s) are on both sides" in run.stderr, run.stderr


def test_cli_never_passes_what_it_cannot_resolve_or_see(tmp_path):
    """Exit 3 when too few processes to resolve (a 10x slowdown over 3 a side), 4 when the candidate lacks a
    configuration of the baseline (a CI step passing on exit 0 must not pass these)."""
    sides = {"base": [overhead([40, 41, 39], [40, 41, 39]), overhead([40] * 5, [40] * 5, backend="mxnet")],
             "slow3": [overhead([400, 410, 390], [40, 41, 39]), overhead([40.1] * 5, [40.1] * 5, backend="mxnet")],
             "lacks": [overhead([40, 42, 39], [40, 42, 39])]}
    for name, recs in sides.items():
        (tmp_path / name).mkdir()
        for i, rec in enumerate(recs):
            (tmp_path / name / f"{i}.json").write_text(json.dumps(rec))
    run = lambda b: subprocess.run([sys.executable, "-m", "bench", "gate", str(tmp_path / "base"),  # noqa: E731
                                    str(tmp_path / b)], capture_output=True, text=True, cwd=ROOT)
    few, lacks = run("slow3"), run("lacks")
    assert few.returncode == 3 and "cannot be resolved with so few processes" in few.stdout
    assert lacks.returncode == 4 and "measured in the baseline only: mxnet" in lacks.stdout


BAD_NUMBERS = [("1e999 in the baseline", "base", lambda r: r["harness"].update(round_medians_ms=["__1e999__"] * 5),
                "expected a finite number"),
               ("a negative candidate time", "cand", lambda r: r["harness"].update(round_medians_ms=[-40.0] * 5),
                "harness.round_medians_ms"),
               ("a string time", "cand", lambda r: r["harness"].update(round_medians_ms="99999"),
                "harness.round_medians_ms"),
               ("true as a time", "base", lambda r: r["native"].update(round_medians_ms=[True] * 5),
                "native.round_medians_ms is 'True'")]


@pytest.mark.parametrize("what,side,spoil,said", BAD_NUMBERS, ids=[b[0] for b in BAD_NUMBERS])
def test_a_malformed_number_is_an_error_naming_the_file_never_a_pass(tmp_path, capsys, what, side, spoil, said):
    """Each of these once read as a number (1e999 as 'faster', a string as five samples of 9.0, true as
    1.0) and the gate exited 0. Now the record is named and skipped, and with its configuration gone
    from that side the gate cannot pass."""
    from bench.cli import main
    rng = np.random.default_rng(4)
    h, n = processes(rng, 5, 40.0, spread=0.03)
    docs = {"base": overhead(h, n), "cand": overhead(h * 10, n)}
    spoil(docs[side])
    for name, doc in docs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}-0.json").write_text(json.dumps(doc).replace('"__1e999__"', "1e999"))
    status = main(["gate", str(tmp_path / "base"), str(tmp_path / "cand")])
    err = capsys.readouterr().err
    assert status != 0 and f"{side}-0.json" in err and said in err, (status, err)
