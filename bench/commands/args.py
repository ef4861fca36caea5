"""Argument types and argument groups that several subcommands share (asv's ``common_args``).

Every number an option takes is checked by its type before anything runs; the message
names the option, the value and the valid range.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.report.format import FORMATS

DEFAULT_OUT = Path("runs")                  # a user's own records (git-ignored)
PUBLISHED = Path("results") / "runs"        # what results/README.md is generated from


def csv(value: str) -> list[str]:
    """argparse type: a comma-separated list (empty items dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def integer(low: int, high: int | None = None):
    """argparse type: an integer in [low, high]."""
    def parse(text: str) -> int:
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {value}")
        return value
    return parse


def integers(text: str) -> list[int]:
    """argparse type: comma-separated integers."""
    try:
        return [int(v) for v in csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def number(low: float, high: float | None = None, *, low_open: bool = True, high_open: bool = False):
    """argparse type: a float in the interval (low, high] (ends as given)."""
    span = f"{'(' if low_open else '['}{low:g}, {'inf)' if high is None else f'{high:g}' + (')' if high_open else ']')}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {span}, got {text!r}") from None
        bad_low = value <= low if low_open else value < low
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high or value != value:
            raise argparse.ArgumentTypeError(f"must be a number in {span}, got {text}")
        return value
    return parse


def setting(text: str) -> tuple[str, str]:
    """argparse type: NAME=VALUE."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="terminal")


def add_step_args(p: argparse.ArgumentParser, sizes: str) -> None:
    """What a timed train-step measurement takes (``bench overhead``, ``bench tune``)."""
    p.add_argument("--backend", type=csv, default=csv("mxnet,mindspore,torch"), help="comma-separated backends")
    p.add_argument("--model", type=csv, default=csv("resnet18"), help="comma-separated architectures")
    p.add_argument("--image-size", type=integers, default=integers(sizes),
                   help=f"comma-separated sizes (default {sizes})")
    p.add_argument("--batch-size", type=integer(1), default=16)
    p.add_argument("--steps", type=integer(3), default=15, help="timed steps per process")
    p.add_argument("--warmup", type=integer(0), default=3, help="steps after the compile step, not timed")
    p.add_argument("--timeout", type=number(0), default=900, help="seconds per measuring process")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="NAME=VALUE",
                   help="an environment setting for every measuring process (e.g. OMP_NUM_THREADS=2)")
    add_format(p)
    p.add_argument("--from", dest="source", type=Path, help="render the table from records in DIR; measure nothing")


def readable_records(paths: list[Path], strict: bool, kind: str = "run") -> list[dict]:
    """Records of ``kind`` under ``paths``; unreadable files are named on stderr and skipped
    (``strict``: an error)."""
    import sys

    from bench.core.errors import BenchError
    from bench.core.records import read_records
    records, problems = read_records(paths, kind)
    for problem in problems:
        print(f"bench: skipped: {problem}", file=sys.stderr)
    if problems and strict:
        raise BenchError(f"{len(problems)} unreadable record(s) under {', '.join(map(str, paths))} (--strict)")
    if not records:
        raise BenchError(f"no readable {kind} records under {', '.join(map(str, paths))}")
    return records
