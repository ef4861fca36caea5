"""``bench overhead`` (the harness against each framework's own loop) and ``bench tune``
(one backend's train step under each runtime setting): measure, or render ``--from`` records."""
from __future__ import annotations

import argparse
from pathlib import Path

from .args import ROUNDS, SECONDS, SPREAD, add_step_args, names, ranged, readable_records, setting, state_ranges


def check_steps(args: argparse.Namespace) -> None:
    """Before measuring anything: every backend installed and building every model, every
    strategy known, every image size at least the model's minimum."""
    from architectures import get_spec
    from backends.registry import backend_info, models_for
    from bench.core.errors import ConfigError
    from bench.plan.strategies import make_plan
    from bench.execute.environments import BackendRef, check_backend
    refs = [BackendRef.parse(b) for b in args.backend]  # torch, or torch@2.12.1 in its own environment
    for ref in refs:
        check_backend(ref)
    for strategy in args.strategy if isinstance(args.strategy, list) else [args.strategy]:
        make_plan(strategy)
    for model in args.model:
        spec = get_spec(model)
        low = spec.min_size("imagenet")
        small = [s for s in args.image_size if s < low]
        if small:
            raise ConfigError(f"--image-size {small[0]} is below {model}'s minimum of {low} px")
        for name in (ref.name for ref in refs):
            if not backend_info(name).builds(name, model):
                raise ConfigError(f"model {model!r} is not available on backend {name!r}; "
                                  f"that backend has: {', '.join(models_for(name))}")


def from_records(args: argparse.Namespace, kind: str, report) -> int:
    """``--from DIR``: render ``kind`` records with ``report``; measure nothing."""
    print(report(readable_records([args.source], False, kind), args.format, args.source))
    return 0


def cmd_overhead(args: argparse.Namespace) -> int:
    from bench.report.speed import overhead_report, render_overhead
    if args.source:
        return from_records(args, "overhead", overhead_report)
    from bench.speed.overhead import measure_overhead
    check_steps(args)
    records = measure_overhead(args)
    print()
    print(render_overhead(records, args.format))
    return 0 if all("ratio" in r for r in records) else 1


def cmd_tune(args: argparse.Namespace) -> int:
    from bench.report.speed import merge_tune, render_tune, tune_report
    if args.source:
        return from_records(args, "tune", tune_report)
    from bench.speed.tune import measure_tune
    check_steps(args)
    for rec in measure_tune(args):
        print(render_tune(merge_tune([rec])[0], args.format))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.report.speed import profile_report, render_profiles
    if args.source:
        return from_records(args, "profile", profile_report)
    from bench.speed.profile import measure_profiles
    check_steps(args)
    records = measure_profiles(args)
    print()
    print(render_profiles(records, args.format))
    return 0 if all("error" not in r for r in records) else 1


def cmd_peak(args: argparse.Namespace) -> int:
    from bench.execute.peak import ensure_peak
    from bench.report.speed import render_peak
    print(render_peak(ensure_peak(force=args.force, seconds=args.seconds), args.format))
    return 0


def add(sub) -> None:
    from bench.speed.overhead import DEFAULT_OUT as OVERHEAD_OUT
    from bench.speed.overhead import SPREAD as OVERHEAD_SPREAD
    from bench.speed.tune import DEFAULT_OUT as TUNE_OUT

    ov = sub.add_parser("overhead", help="harness train step vs each framework's own minimal loop, "
                                         "side by side, one process each")
    add_step_args(ov, "32,112")
    ov.set_defaults(model=names("resnet18,efficientnet_lite0"), func=cmd_overhead)
    ov.add_argument("--strategy", type=names, default=names("full,linear-probe"), help="comma-separated strategies")
    ov.add_argument("--rounds", type=ranged(ROUNDS), default=2, help="native/harness process pairs per combination")
    ov.add_argument("--max-rounds", type=ranged(ROUNDS), default=None,
                    help="further rounds, one at a time up to this many, while the rounds' ratios spread wider "
                         "than --spread (default: --rounds, none)")
    ov.add_argument("--spread", type=ranged(SPREAD), default=OVERHEAD_SPREAD,
                    help="the widest spread (max - min) of round ratios that needs no further round")
    ov.add_argument("--design", choices=["processes", "interleaved"], default="processes",
                    help="processes: each loop in its own process; interleaved: both in one process, "
                         "alternating step by step (paired; for machines whose speed varies by process)")
    ov.add_argument("--out", type=Path, default=OVERHEAD_OUT, help=f"directory for the records (default {OVERHEAD_OUT}/)")

    tu = sub.add_parser("tune", help="time one backend's train step under each runtime setting (threads, "
                                     "oneDNN ISA, compile level, ...)")
    add_step_args(tu, "32,112")
    tu.set_defaults(backend=names("mindspore"), steps=8, warmup=2, func=cmd_tune)
    tu.add_argument("--rounds", type=ranged(ROUNDS), default=2, help="processes per setting, model and size")
    tu.add_argument("--strategy", default="full")
    tu.add_argument("--knob", type=setting, action="append", default=[], metavar="NAME=VALUE",
                    help="try this setting (repeatable; default: the values backends/registry.py lists)")
    tu.add_argument("--out", type=Path, default=TUNE_OUT, help=f"directory for the record (default {TUNE_OUT}/)")
    from bench.speed.profile import DEFAULT_OUT as PROFILE_OUT
    pr = sub.add_parser("profile", help="where each framework's own train step spends its time, by its own "
                                        "profiler (top operators and their share)")
    add_step_args(pr, "112")
    pr.set_defaults(model=names("resnet18,efficientnet_lite0"), steps=5, warmup=2, func=cmd_profile)
    pr.add_argument("--strategy", default="full")
    pr.add_argument("--out", type=Path, default=PROFILE_OUT, help=f"directory for the records (default {PROFILE_OUT}/)")
    pk = sub.add_parser("peak", help="the machine's attainable peak (large GEMMs and a convolution through MKL, "
                                     "oneDNN and OpenBLAS, fp32, bf16 and fp16) and its theoretical one; cached, and "
                                     "recorded in every timed record")
    pk.add_argument("--force", action="store_true", help="measure again even if cached")
    pk.add_argument("--seconds", type=ranged(SECONDS), default=1.0, help="time per kernel")
    pk.add_argument("--format", choices=["terminal", "markdown"], default="terminal")
    pk.set_defaults(func=cmd_peak)
    state_ranges(ov)
    state_ranges(tu)
