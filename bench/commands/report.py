"""``bench report`` (tables and plots from records) and ``bench compare A B`` (what changed)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import FACTOR, FRACTION, PUBLISHED, add_format, default_out, ranged, readable_records


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.tables import render_report

    from bench.records.store import read_records

    paths = args.paths or [default_out()]
    records = readable_records(paths, args.strict)
    studies, _ = read_records(paths, "study")
    print(render_report(records, args.format, sources=" ".join(map(str, paths)), studies=studies))
    if args.plots:
        from bench.report.plots import write_plots
        for path in write_plots(records, args.plots, studies):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import render_compare

    before = readable_records([args.a], args.strict)
    after = readable_records([args.b], args.strict)
    print(render_compare(before, after, args.format, min_effect=args.min_effect, factor=args.factor))
    return 0


def add(sub) -> None:
    rep = sub.add_parser("report", help="tables (and plots) from result records")
    rep.add_argument("paths", nargs="*", type=Path,
                     help=f"record files or directories (default: runs/ of the checkout, or BENCH_OUT; the published "
                          f"ones: {PUBLISHED})")
    add_format(rep)
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
    cmp_.set_defaults(func=cmd_compare)
