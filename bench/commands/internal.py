"""The child sides of isolated jobs, hidden from ``bench --help``: ``_exec`` (one run, given as
a JSON config), ``_step`` (one timed train-step measurement), ``_layers``, ``_peak``, ``_profile``
and ``_parity`` (one backend's steps against the NumPy reference)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_exec(args: argparse.Namespace) -> int:
    from bench.records.store import write_json_atomic
    from bench.execute.runner import execute
    from bench.plan.config import RunConfig

    config = RunConfig.from_json(json.loads(args.config))
    rec = execute(config, args.out, cache_dir=args.cache_dir, data_root=args.data_root,
                  save_weights=args.save_weights, suite_weights=args.pretrained_weights,
                  progress=not args.no_progress, skip_bad_images=args.skip_bad_images, packed=args.packed)
    write_json_atomic(args.result_file, {"path": rec["path"]})
    return 0


def cmd_step(args: argparse.Namespace) -> int:
    from bench.records.store import write_json_atomic
    from bench.speed.step import time_loops
    write_json_atomic(args.result_file, time_loops(json.loads(args.spec)))
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from backends.registry import get_backend
    from bench.records.store import write_json_atomic
    write_json_atomic(args.out, get_backend("torch").layers(args.arch, args.image_size, args.stem, args.classes))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.records.store import write_json_atomic
    from bench.speed.profile import profile_loop
    write_json_atomic(args.result_file, profile_loop(json.loads(args.spec)))
    return 0


def cmd_peak(args: argparse.Namespace) -> int:
    from bench.measure.peak import measure_kernels
    from bench.records.store import write_json_atomic
    write_json_atomic(args.out, measure_kernels(args.seconds))
    return 0


def cmd_parity_child(args: argparse.Namespace) -> int:
    from bench.parity.check import run_backend_steps, write_initial_weights
    from bench.plan.config import RunConfig
    from bench.records.store import write_json_atomic
    config = RunConfig.from_json(json.loads(args.config))
    if args.init:
        write_initial_weights(config, args.weights)
    write_json_atomic(args.result_file, run_backend_steps(config, args.steps_per_epoch, str(args.weights)))
    return 0


def add(sub) -> None:
    ex = sub.add_parser("_exec")  # no help: hidden from `bench --help`
    ex.add_argument("config")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--result-file", type=Path, required=True)
    ex.add_argument("--cache-dir", type=Path)
    ex.add_argument("--data-root", type=Path)
    ex.add_argument("--save-weights", type=Path)
    ex.add_argument("--pretrained-weights", type=Path)
    ex.add_argument("--no-progress", action="store_true")
    ex.add_argument("--skip-bad-images", action="store_true")
    ex.add_argument("--packed", action="store_true")
    ex.set_defaults(func=cmd_exec)
    step = sub.add_parser("_step")
    step.add_argument("spec")
    step.add_argument("--result-file", type=Path, required=True)
    step.set_defaults(func=cmd_step)
    layers = sub.add_parser("_layers")  # the layer list FLOPs are counted from (bench.execute.flops)
    layers.add_argument("arch")
    layers.add_argument("image_size", type=int)
    layers.add_argument("stem")
    layers.add_argument("classes", type=int)
    layers.add_argument("out", type=Path)
    layers.set_defaults(func=cmd_layers)
    peak = sub.add_parser("_peak")  # the math libraries' kernels, timed (bench.execute.peak)
    peak.add_argument("out", type=Path)
    peak.add_argument("--seconds", type=float, default=1.0)
    peak.set_defaults(func=cmd_peak)
    prof = sub.add_parser("_profile")  # one framework's loop under its profiler (bench.speed.profile)
    prof.add_argument("spec")
    prof.add_argument("--result-file", type=Path, required=True)
    prof.set_defaults(func=cmd_profile)
    par = sub.add_parser("_parity")  # one backend's K steps against the NumPy reference (bench parity)
    par.add_argument("config")
    par.add_argument("steps_per_epoch", type=int)
    par.add_argument("weights", type=Path)
    par.add_argument("--result-file", type=Path, required=True)
    par.add_argument("--init", action="store_true", help="first write the model's own initial weights there")
    par.set_defaults(func=cmd_parity_child)
