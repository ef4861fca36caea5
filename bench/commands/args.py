"""Argument types and argument groups that several subcommands share (asv's ``common_args``).

Every number an option takes is checked by its type before anything runs; the message
names the option, the value and the valid range.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.plan.config import RANGES, Range
from bench.report.format import FORMATS

PUBLISHED = Path("results") / "runs"        # what results/README.md is generated from


def default_out() -> Path:
    """Where a user's records go unless --out says: ``BENCH_OUT``; else ``runs/`` of the checkout
    (beside pyproject.toml; git-ignored), wherever the command runs from, so a run started inside
    ``results/`` never writes there; else ``runs/`` in the working directory (an installed bench)."""
    import os

    from bench.measure.environment import PROJECT_ROOT
    if os.environ.get("BENCH_OUT"):
        return Path(os.environ["BENCH_OUT"])
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "runs"
    return Path("runs")


def csv(value: str) -> list[str]:
    """argparse type: a comma-separated list (empty items dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def names(value: str) -> list[str]:
    """argparse type: a non-empty comma-separated list of distinct names."""
    items = csv(value)
    if not items:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated names, got {value!r}")
    twice = sorted({v for v in items if items.count(v) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} given more than once")
    return items


def ranged(valid: Range):
    """argparse type: a number within ``valid`` (finite; an integer where it says so)."""
    def parse(text: str):
        try:
            value = int(text) if valid.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text!r}") from None
        if not valid.holds(value):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text}")
        return value
    parse.range = valid
    return parse


def ranged_list(valid: Range):
    """argparse type: a comma-separated list of numbers within ``valid``, no duplicates."""
    one = ranged(valid)

    def parse(text: str) -> list:
        values = [one(v) for v in csv(text)]
        if not values or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"expected distinct comma-separated values, each {valid}; got {text!r}")
        return values
    parse.range = valid
    return parse


def state_ranges(parser: argparse.ArgumentParser) -> None:
    """Append each ranged option's range to its ``--help`` line (the range is stated once: its type)."""
    for action in parser._actions:
        valid = getattr(action.type, "range", None)
        if valid is not None:
            action.help = f"{action.help}; {valid}" if action.help else str(valid)


# Ranges of options that are not RunConfig fields
SEEDS = Range(1, 1000, integer=True)
TIMEOUT = Range(0, 7 * 86400, low_open=True)          # seconds
RETRIES = Range(0, 10, integer=True)
TRIALS = Range(1, 256, integer=True)
ROUNDS = Range(1, 100, integer=True)
SPREAD = Range(0, 10)                                  # of harness/native ratios (max - min)
STEPS = Range(3, 10_000, integer=True)
FRACTION = Range(0, 1)
FACTOR = Range(1, 100)
ALPHA_LEVEL = Range(0, 0.5, low_open=True)             # a significance level
SECONDS = Range(0.05, 60)                              # time per kernel (bench peak)


def precisions(text: str) -> list[str]:
    """argparse type: distinct precisions from fp32, bf16, fp16."""
    from bench.plan.config import PRECISIONS
    items = names(text)
    bad = [p for p in items if p not in PRECISIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown precision {bad[0]!r}; valid: {', '.join(PRECISIONS)}")
    return items


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
    p.add_argument("--backend", type=names, default=names("mxnet,mindspore,torch"), help="comma-separated backends")
    p.add_argument("--model", type=names, default=names("resnet18"), help="comma-separated architectures")
    p.add_argument("--image-size", type=ranged_list(RANGES["image_size"]), default=ranged_list(RANGES["image_size"])(sizes),
                   help=f"comma-separated sizes in px (default {sizes})")
    p.add_argument("--batch-size", type=ranged(RANGES["batch_size"]), default=16)
    p.add_argument("--steps", type=ranged(STEPS), default=15, help="timed steps per process")
    p.add_argument("--warmup", type=ranged(RANGES["warmup_steps"]), default=3, help="steps after the compile step, not timed")
    p.add_argument("--timeout", type=ranged(TIMEOUT), default=900, help="seconds per measuring process")
    p.add_argument("--precision", type=precisions, default=["fp32"],
                   help="comma-separated: fp32, bf16, fp16 (mixed precision, fp32 master weights)")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="NAME=VALUE",
                   help="an environment setting for every measuring process (e.g. OMP_NUM_THREADS=2)")
    add_format(p)
    p.add_argument("--from", dest="source", type=Path, help="render the table from records in DIR; measure nothing")


def readable_records(paths: list[Path], strict: bool, kind: str = "run") -> list[dict]:
    """Records of ``kind`` under ``paths``; unreadable files are named on stderr and skipped
    (``strict``: an error)."""
    import sys

    from bench.core.errors import BenchError
    from bench.records.store import read_records
    records, problems = read_records(paths, kind)
    for problem in problems:
        print(f"bench: skipped: {problem}", file=sys.stderr)
    if problems and strict:
        raise BenchError(f"{len(problems)} unreadable record(s) under {', '.join(map(str, paths))} (--strict)")
    if not records:
        raise BenchError(f"no readable {kind} records under {', '.join(map(str, paths))}")
    return records
