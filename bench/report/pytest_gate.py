"""The suite's pytest plugin (entry point ``pytest11: bench``): pytest-benchmark results gated the way
``bench gate`` gates records, through pytest-benchmark's own storage, options and hooks.

A benchmark whose timing lives in child processes (one framework per process: ``tests/benchmarks``)
runs several processes, one per pytest-benchmark round (``time_processes``): pytest-benchmark times
each process from start to exit, and the samples the noise lives in -- each process's median steady
step, its peak resident memory, whether another job used the CPU meanwhile -- go to the benchmark's
``extra_info`` (``bench.report.gate.PROCESSES``), which pytest-benchmark saves with the run
(``--benchmark-autosave``, ``--benchmark-save=NAME``, ``--benchmark-json=PATH``).

``--benchmark-gate[=RUN]`` compares this run's saved results with a saved run (RUN: a run number
such as ``0001``, a file name or path; none: the newest run saved before this one) by
``bench.report.gate.gate``: one-sided Mann-Whitney U over the processes and a factor per measure.
A regression, a benchmark of the baseline missing from this run, or too few processes to resolve
fail the session (pytest's exit status 1) and the terminal summary names what moved.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from .gate import ALPHA, FACTOR, MEMORY_FACTOR, OVERHEAD_FACTOR, PROCESSES

PROCESSES_DEFAULT = 5  # the fewest a side at which a one-sided U test (5 vs 5: p >= 1/252) resolves at 0.05
_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("benchmark-gate", "bench: gate pytest-benchmark runs on per-process samples")
    group.addoption("--benchmark-processes", type=int, default=PROCESSES_DEFAULT, metavar="N",
                    help="processes per benchmark whose steps run in child processes: the gate's samples "
                         f"(default {PROCESSES_DEFAULT})")
    group.addoption("--benchmark-gate", nargs="?", const="", default=None, metavar="RUN",
                    help="fail the session when this run regressed against a saved run (a number such as 0001, a "
                         "file name or path; default: the newest saved): significant (Mann-Whitney U over "
                         "processes) and beyond a factor. Needs --benchmark-autosave, --benchmark-save or "
                         "--benchmark-json")
    group.addoption("--benchmark-gate-factor", type=float, default=FACTOR, metavar="X",
                    help=f"smallest step-time slowdown that fails (ratio of medians; default {FACTOR:g})")
    group.addoption("--benchmark-gate-overhead-factor", type=float, default=OVERHEAD_FACTOR, metavar="X",
                    help=f"the same for the paired harness/native ratio (default {OVERHEAD_FACTOR:g})")
    group.addoption("--benchmark-gate-memory-factor", type=float, default=MEMORY_FACTOR, metavar="X",
                    help=f"the same for peak resident memory (default {MEMORY_FACTOR:g})")
    group.addoption("--benchmark-gate-alpha", type=float, default=ALPHA, metavar="P",
                    help=f"significance level (default {ALPHA:g})")


@pytest.fixture
def benchmark_processes(request) -> int:
    """How many processes a benchmark timed in child processes runs (``--benchmark-processes``)."""
    return request.config.getoption("benchmark_processes")


def time_processes(benchmark, measure_one, processes: int) -> list[dict]:
    """Run ``measure_one()`` ``processes`` times, one pytest-benchmark round each (a round: one
    measuring child process, start to exit, under the machine lock), and keep each process's samples
    in ``extra_info``. ``measure_one`` returns the child's result: ``stats.median_ms`` (its steady
    median step), ``memory.peak_rss_mb``, ``contention.busy``, ``environment``; optionally ``ratio``
    (harness/native within the process). Raises on a failed process, naming its error."""
    from .groups import machine_of
    results: list[dict] = []
    benchmark.pedantic(lambda: results.append(measure_one()), rounds=processes, iterations=1)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise AssertionError(f"{len(errors)} of {len(results)} measuring processes failed: {errors[0]}")
    machines = {machine_of(r) for r in results}
    assert len(machines) == 1, f"the processes ran on different machines: {machines}"
    got = {"step_ms": [r["stats"]["median_ms"] for r in results],
           "peak_rss_mb": [r["memory"]["peak_rss_mb"] for r in results],
           "contended": [bool(r["contention"].get("busy")) for r in results],
           "machine": machine_of(results[0], versions=True)}
    if all("ratio" in r for r in results):
        got["harness_native"] = [r["ratio"] for r in results]
    benchmark.extra_info[PROCESSES] = got
    return results


def pytest_configure(config) -> None:
    config.stash[_STATE] = {"baseline": None, "candidate": None, "rows": None}
    run = config.getoption("benchmark_gate", None)
    if run is None:
        return
    if not any(config.getoption(o, None) for o in ("benchmark_autosave", "benchmark_save", "benchmark_json")):
        raise pytest.UsageError("--benchmark-gate compares this run's saved results: add --benchmark-autosave "
                                "(or --benchmark-save=NAME, or --benchmark-json=PATH)")
    config.stash[_STATE]["baseline"] = saved_run(config, run)  # before this run saves its own


def saved_run(config, run: str) -> Path:
    """The saved pytest-benchmark run ``run`` names, in ``--benchmark-storage`` (file storage)."""
    if run and Path(run).is_file():
        return Path(run)
    storage = str(config.getoption("benchmark_storage", None) or "file://./.benchmarks")
    if "://" in storage and not storage.startswith("file://"):
        raise pytest.UsageError(f"--benchmark-gate reads file storage only, not --benchmark-storage={storage}")
    root = Path(storage.removeprefix("file://"))
    saved = sorted(root.glob("*/*.json"), key=lambda p: (p.name, str(p)))
    if re.fullmatch(r"\d+", run):
        found = [p for p in saved if p.name.startswith(f"{int(run):04d}_")]
    else:
        found = [p for p in saved if p.name.startswith(run)] if run else saved[-1:]
    if len(found) != 1:
        raise pytest.UsageError(
            f"--benchmark-gate={run}: {'no' if not found else len(found)} saved run(s) match in {root} "
            f"({', '.join(p.name for p in saved[-5:]) or 'nothing saved: run once with --benchmark-autosave'})")
    return found[0]


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    config.stash[_STATE]["candidate"] = output_json


def pytest_sessionfinish(session, exitstatus) -> None:
    """After pytest-benchmark saved this run (its own sessionfinish wraps this one): the gate."""
    from .gate import Samples, exit_status, gate, pytest_samples
    from bench.records.store import read_json_file
    state = session.config.stash.get(_STATE, {})
    if state.get("baseline") is None or exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    option = session.config.getoption
    base = pytest_samples(read_json_file(state["baseline"], "saved benchmark run"), str(state["baseline"]))
    cand = pytest_samples(state["candidate"], "this run") if state["candidate"] is not None else Samples()
    rows = gate(base, cand, factor=option("benchmark_gate_factor"),
                overhead_factor=option("benchmark_gate_overhead_factor"),
                alpha=option("benchmark_gate_alpha"), memory_factor=option("benchmark_gate_memory_factor"))
    state.update(rows=rows, ungated=sorted(set(base.ungated) | set(cand.ungated)))
    if not rows or exit_status(rows):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from .gate import render_gate
    state = config.stash.get(_STATE, {})
    if state.get("rows") is None:
        return
    terminalreporter.write_sep("=", f"benchmark gate against {state['baseline']}")
    terminalreporter.write_line(render_gate(state["rows"]))
    if state["ungated"]:
        terminalreporter.write_line(f"not gated (timed in one process, no per-process samples): "
                                    f"{', '.join(state['ungated'])}")
