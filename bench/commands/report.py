"""``bench report`` (tables and plots from records) and ``bench compare A B`` (what changed)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import ConfigError
from bench.report.format import FORMATS

from .args import ALPHA_LEVEL, FACTOR, FRACTION, PUBLISHED, add_format, default_out, ranged, readable_records


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.tables import render_report

    from bench.records.store import read_records

    if args.format == "html":
        return _site(args)
    paths = args.paths or [default_out()]
    records = readable_records(paths, args.strict)
    studies, _ = read_records(paths, "study")
    print(render_report(records, args.format, sources=" ".join(map(str, paths)), studies=studies))
    if args.plots:
        from bench.report.plots import write_plots
        for path in write_plots(records, args.plots, studies):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _site(args: argparse.Namespace) -> int:
    """``--format html OUT [PATHS]``: the first path is the site's folder, the rest the records."""
    from bench.report.site import write_site

    if not args.paths:
        raise ConfigError("--format html writes a site: give its folder first, e.g. "
                          "`bench report --format html site/ results/runs results/speed`")
    out, paths = args.paths[0], args.paths[1:] or [default_out()]
    if out.is_file() or (out.is_dir() and any(out.glob("*.json"))):
        raise ConfigError(f"--format html: {out} holds records or is a file; the first path is the folder the "
                          "site is written to (then the record paths)")
    readable_records(paths, args.strict)  # a path that is missing or (with --strict) unreadable fails here
    sources = " ".join(map(str, args.paths)) + "".join(f" --history {h}" for h in args.history or [])
    written = write_site(out, paths, sources=sources, history_paths=args.history or [])
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    print(f"open {(out / 'index.html').resolve().as_uri()}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import render_compare

    before = readable_records([args.a], args.strict)
    after = readable_records([args.b], args.strict)
    if args.release:
        before, after = _releases(args.release, before, after, args.a, args.b)
    print(render_compare(before, after, args.format, min_effect=args.min_effect, factor=args.factor))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from bench.report.gate import exit_status, gate, render_gate

    from bench.core.errors import BenchError
    releases = _release_labels(args.release) if args.release else [None, None]
    (base, base_ids), (cand, cand_ids) = (_gate_samples(path, release)
                                          for path, release in zip((args.baseline, args.candidate), releases))
    same = sorted(set(base_ids) & set(cand_ids))
    if same:  # one measurement on both sides hides a change in the other records pooled with it
        raise BenchError(f"{len(same)} record(s) are on both sides, e.g. {base_ids[same[0]]} and "
                         f"{cand_ids[same[0]]}: the candidate must hold only new measurements")
    sides = [base, cand]
    rows = gate(*sides, factor=args.factor, overhead_factor=args.overhead_factor, alpha=args.alpha,
                memory_factor=args.memory_factor)
    print(render_gate(rows, args.format))
    for path, side in zip((args.baseline, args.candidate), sides):
        if side.ungated:
            print(f"bench: {path}: not gated (timed in one process, no per-process samples): "
                  f"{', '.join(side.ungated)}", file=sys.stderr)
    return exit_status(rows) if rows else 2


def _release_labels(release: list[str]) -> list[str]:
    """``--release A B``: two releases of one backend, as ``--backend`` names them."""
    from bench.execute.environments import BackendRef
    refs = [BackendRef.parse(r) for r in release]
    if refs[0].name != refs[1].name or refs[0] == refs[1]:
        raise ConfigError(f"--release {' '.join(release)}: two releases of one backend (e.g. --release "
                          "torch@2.12.1 torch@2.13.0)")
    return [ref.label for ref in refs]


def _one_release(records: list[dict], label: str, path: Path) -> list[dict]:
    """The runs of release ``label`` in ``path``'s records, matched as one configuration whatever their release."""
    from bench.report.groups import one_release
    found = one_release(records, label)
    if not found:
        raise ConfigError(f"--release: {path} holds no run of {label} (bench run --backend {label})")
    return found


def _releases(release: list[str], before: list[dict], after: list[dict], a: Path, b: Path):
    """A's runs from the first record set, B's from the second (they may be one folder)."""
    labels = _release_labels(release)
    return _one_release(before, labels[0], a), _one_release(after, labels[1], b)


def _gate_samples(path: Path, release: str | None = None):
    """One side of ``bench gate``: (its samples, {digest of each record or file: its path}), from a
    pytest-benchmark JSON file, or a folder (or file) of records."""
    import hashlib
    import json

    from bench.core.errors import BenchError
    from bench.records.store import read_json_file, read_records
    from bench.report.gate import pytest_samples, samples

    def digest(doc) -> str:
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    if path.is_file() and path.suffix == ".json":
        doc = read_json_file(path, "benchmark results")
        if isinstance(doc, dict) and "benchmarks" in doc and "kind" not in doc:  # pytest-benchmark's own format
            return pytest_samples(doc, str(path)), {digest(doc["benchmarks"]): path}
    runs, problems = read_records([path], with_paths=True)
    overhead, more = read_records([path], "overhead", with_paths=True)
    if release:  # --release: this side's runs of one release, named without it (speed records name none)
        runs, overhead = [(path, r) for r in _one_release([r for _, r in runs], release, path)], []

    for problem in problems + more:
        print(f"bench: skipped: {problem}", file=sys.stderr)
    if not runs and not overhead:
        raise BenchError(f"{path}: no run or overhead records (bench gate compares step times: "
                         "`bench overhead --rounds N --out DIR`, `bench run` records, or pytest-benchmark's JSON "
                         "of `pytest tests/benchmarks -m bench --benchmark-autosave`)")
    ids = {digest(rec): f for f, rec in runs + overhead}
    return samples([r for _, r in runs], [r for _, r in overhead]), ids


def add(sub) -> None:
    rep = sub.add_parser("report", help="tables (and plots) from result records")
    rep.add_argument("paths", nargs="*", type=Path,
                     help=f"record files or directories (default: runs/ of the checkout, or BENCH_OUT; the published "
                          f"ones: {PUBLISHED}); with --format html the first is the site's folder")
    rep.add_argument("--format", choices=FORMATS + ("html",), default="terminal",
                     help="html: a static site (tables that filter and sort, interactive plots, links to the "
                          "records) written to the first path; opens from disk")
    rep.add_argument("--history", type=Path, action="append",
                     help="--format html: also read these records (many commits, a folder per machine) for the "
                          "history page")
    rep.add_argument("--plots", type=Path, help="also write PNG plots (accuracy curves, gaps, step time) to DIR")
    rep.add_argument("--strict", action="store_true", help="fail if any record cannot be read")
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser("compare", help="per configuration: accuracy and step-time changes between two record sets")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    add_format(cmp_)
    cmp_.add_argument("--min-effect", type=ranged(FRACTION), default=0.01,
                      help="smallest top-1 change worth marking (fraction; default 0.01)")
    cmp_.add_argument("--factor", type=ranged(FACTOR), default=1.05,
                      help="smallest step-time ratio worth marking (default 1.05)")
    cmp_.add_argument("--strict", action="store_true", help="fail if any record cannot be read")
    cmp_.add_argument("--release", nargs=2, metavar=("A", "B"),
                      help="two releases of one backend (torch@2.12.1 torch@2.13.0): A's runs from the first "
                           "record set, B's from the second (may be one folder), matched whatever their release")
    cmp_.set_defaults(func=cmd_compare)
    from bench.report.gate import ALPHA, FACTOR as GATE_FACTOR, MEMORY_FACTOR, OVERHEAD_FACTOR
    g = sub.add_parser("gate", help="exit 1 on a step-time or memory regression that is significant (Mann-Whitney U "
                                    "over processes) and beyond a factor; samples are processes, not steps; exit 3 "
                                    "when too few processes to resolve, 4 when the candidate lacks a configuration")
    g.add_argument("baseline", type=Path, help="records (a folder or file: bench overhead --rounds N, or bench run), "
                                               "or a pytest-benchmark JSON of tests/benchmarks")
    g.add_argument("candidate", type=Path)
    add_format(g)
    g.add_argument("--factor", type=ranged(FACTOR), default=GATE_FACTOR,
                   help=f"smallest slowdown that fails the gate (ratio of medians; default {GATE_FACTOR:g})")
    g.add_argument("--overhead-factor", type=ranged(FACTOR), default=OVERHEAD_FACTOR,
                   help=f"the same for the paired harness/native ratio (default {OVERHEAD_FACTOR:g})")
    g.add_argument("--memory-factor", type=ranged(FACTOR), default=MEMORY_FACTOR,
                   help=f"the same for peak resident memory (default {MEMORY_FACTOR:g})")
    g.add_argument("--alpha", type=ranged(ALPHA_LEVEL), default=ALPHA, help=f"significance level (default {ALPHA:g})")
    g.add_argument("--release", nargs=2, metavar=("A", "B"),
                   help="gate release B of a backend against release A (torch@2.12.1 torch@2.13.0): A's runs "
                        "from the baseline, B's from the candidate (may be one folder), matched whatever their release")
    g.set_defaults(func=cmd_gate)
