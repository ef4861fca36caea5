"""Command line: ``python -m bench run | list | report | compare | overhead | tune``.

User errors (BenchError) are printed as one line without a traceback, exit 2.
Every number an option takes is checked before anything runs; the message names
the option, the value and the valid range.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import SCRATCH_INITS, RunConfig
from .errors import BenchError, ConfigError
from .experiments import EXPERIMENTS, get_experiment
from .strategies import ALL_STRATEGIES, STRATEGY_HELP, make_plan

DEFAULT_OUT = Path("runs")                  # a user's own records (git-ignored)
PUBLISHED = Path("results") / "runs"        # what results/README.md is generated from


def _csv(value: str) -> list[str]:
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


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="mxnet", help="backend(s), comma-separated (see `bench list`)")
    p.add_argument("--experiment", help=f"one of {', '.join(EXPERIMENTS)} (default: digits-transfer; "
                   "the dataset's own experiment with --dataset; folder with --data-dir)")
    p.add_argument("--arms", default="finetune,scratch", help="finetune,scratch (either or both)")
    p.add_argument("--strategy", help="fine-tuning strategy, comma-separated list, or 'all' "
                   "(default: the experiment's; see `bench list`)")
    p.add_argument("--model", help="architecture (default: the experiment's, per backend)")
    p.add_argument("--dataset", help="registered dataset for the target task")
    p.add_argument("--data-dir", help="your own image folder: DIR/<split>/<class>/<image>")
    p.add_argument("--train-split", help="default: train")
    p.add_argument("--eval-split", help="default: test (canidae: val)")
    p.add_argument("--shots", type=integer(1), help="images per class kept in the train split")
    p.add_argument("--eval-shots", type=integer(1), help="images per class kept in the eval split (default: all)")
    p.add_argument("--val-fraction", type=number(0, 1, high_open=True),
                   help="carve this fraction of train (per class) as a validation split: the best epoch is "
                        "chosen on it and its test accuracy reported")
    p.add_argument("--classes", type=_csv, help="keep only these classes, comma-separated")
    p.add_argument("--archive", help="cifar10: an image-folder archive (PATH or URL) instead of the official download")
    p.add_argument("--archive-checksum", help="ALGO:HEX of --archive (default: the known CIFAR-10 JPEG archive)")
    p.add_argument("--pretrained", help="suite | imagenet | none | PATH to weights "
                   "(canonical .npz, or the backend's own .params/.ckpt/.pth)")
    p.add_argument("--pretrain-backend", help="backend that runs the suite's pretrain step once, "
                   "writing canonical weights every backend starts from (default: mxnet)")
    p.add_argument("--scratch-init", choices=SCRATCH_INITS + ("both",),
                   help="scratch arm: shared (one canonical random init per architecture, classes and seed, "
                        "the same on every backend; default), native (each framework's initialiser), or both")
    p.add_argument("--epochs", type=integer(1))
    p.add_argument("--batch-size", type=integer(1))
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"])
    p.add_argument("--lr", type=number(0), help="base lr of the fine-tuned arms")
    p.add_argument("--scratch-lr", type=number(0), help="lr of the scratch arm")
    p.add_argument("--momentum", type=number(0, 1, low_open=False, high_open=True))
    p.add_argument("--weight-decay", "--wd", type=number(0, low_open=False), dest="weight_decay")
    p.add_argument("--image-size", type=integer(1), help="train crop / eval crop size in pixels "
                   "(at least the architecture's minimum, see `bench list`)")
    p.add_argument("--device", choices=["cpu", "gpu", "ascend"])
    p.add_argument("--stem", choices=["imagenet", "cifar"],
                   help="ResNet stem: the zoo's 7x7/2 conv + max-pool, or CIFAR-style 3x3/1 conv and no pool")
    p.add_argument("--bn-stats", choices=["train", "frozen"],
                   help="frozen: BatchNorm running statistics fixed in every stage while gamma/beta "
                        "train (fine-tuned arms; the EfficientNet advice for small batches)")
    p.add_argument("--mode", choices=["graph", "pynative"],
                   help="graph: compiled step (MindSpore GRAPH_MODE, Gluon hybridize); pynative: eager")
    p.add_argument("--loader", choices=["shared", "native"], help="shared numpy pipeline or the framework's own")
    p.add_argument("--seed", type=integer(0), default=0, help="first seed")
    p.add_argument("--seeds", type=integer(1), default=1, help="number of seeds per configuration")
    p.add_argument("--target-accuracy", type=number(0, 1), help="time-to-accuracy target (a fraction in (0, 1])")
    p.add_argument("--warmup-steps", type=integer(0), help="steps after the compile step excluded from stats")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"directory for the JSON records (default {DEFAULT_OUT}/; publish with --out {PUBLISHED})")
    p.add_argument("--cache-dir", type=Path, help="pretrained-weight cache (env BENCH_CACHE_DIR)")
    p.add_argument("--data-root", type=Path, help="downloaded/embedded data cache (env BENCH_DATA_ROOT)")
    p.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images instead of failing")
    p.add_argument("--timeout", type=number(0), help="per-job time limit in seconds (the job is recorded as failed)")
    p.add_argument("--in-process", action="store_true",
                   help="run jobs in this process instead of one subprocess each (debugging)")
    p.add_argument("--resume", action="store_true",
                   help="skip configurations that already have an ok record (same config hash) in --out")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one subprocess at a time here; ray: the same jobs as Ray tasks")
    p.add_argument("--ray-address", help="ray: the cluster to join (auto, HOST:PORT); default: start one here")
    p.add_argument("--pack", action="store_true",
                   help="accuracy-only sweep: jobs may share a machine; step times are marked packed and "
                        "kept out of speed tables and gates")
    p.add_argument("--max-retries", type=integer(0), default=0,
                   help="ray: retries of a job whose worker died (default 0: a crash is a record, never hidden)")
    p.add_argument("--no-progress", action="store_true")


def _known_archive_checksum() -> str:
    from datasets.cifar import KNOWN_FOLDER_ARCHIVES
    return next(iter(KNOWN_FOLDER_ARCHIVES))


def _experiment_name(args: argparse.Namespace) -> str:
    if args.experiment:
        return args.experiment
    if args.data_dir:
        return "folder"
    if args.dataset in EXPERIMENTS:
        return args.dataset
    return "digits-transfer"


def _common_overrides(args: argparse.Namespace) -> dict:
    common = dict(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                  train_split=args.train_split, eval_split=args.eval_split, shots=args.shots,
                  eval_shots=args.eval_shots, val_fraction=args.val_fraction, classes=args.classes,
                  archive=args.archive, archive_checksum=args.archive_checksum or (
                      _known_archive_checksum() if args.archive else None),
                  pretrained=args.pretrained, pretrain_backend=args.pretrain_backend, epochs=args.epochs,
                  batch_size=args.batch_size, optimizer=args.optimizer, momentum=args.momentum,
                  weight_decay=args.weight_decay, image_size=args.image_size, stem=args.stem,
                  bn_stats=args.bn_stats, device=args.device, mode=args.mode, loader=args.loader,
                  target_accuracy=args.target_accuracy, warmup_steps=args.warmup_steps)
    if args.data_dir:
        common["dataset"] = "folder"
    elif args.dataset and args.eval_split is None:
        from datasets.registry import dataset_splits
        common["train_split"], common["eval_split"] = dataset_splits(args.dataset)
    return common


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    """Expand CLI choices into one RunConfig per (backend, seed, arm, strategy, scratch init)."""
    experiment = get_experiment(_experiment_name(args))
    arms = _csv(args.arms)
    for arm in arms:
        if arm not in ("finetune", "scratch"):
            raise ConfigError(f"unknown arm {arm!r} in --arms; valid: finetune, scratch")
    strategy = args.strategy or experiment.strategy
    strategies = list(ALL_STRATEGIES) if strategy == "all" else _csv(strategy)
    for s in strategies:
        make_plan(s)  # validates
    if "scratch" in strategies and "scratch" not in arms:
        arms.append("scratch")
    inits = list(SCRATCH_INITS) if args.scratch_init == "both" else [args.scratch_init or "shared"]
    common = _common_overrides(args)
    configs = []
    for backend in _csv(args.backend):
        for seed in range(args.seed, args.seed + args.seeds):
            for arm in arms:
                if arm == "scratch":
                    configs += [experiment.arm_config(backend, arm, "scratch", seed=seed, lr=args.scratch_lr,
                                                      scratch_init=init, **common) for init in inits]
                    continue
                configs += [experiment.arm_config(backend, arm, s, seed=seed, lr=args.lr, **common)
                            for s in strategies if s != "scratch"]
    for config in configs:
        config.check_model()
    return configs


def _run_options(args: argparse.Namespace):
    import os

    from datasets.registry import default_data_root

    from .runner import default_cache_dir
    from .sweep import RunOptions
    return RunOptions(out=args.out, cache_dir=Path(args.cache_dir or default_cache_dir()),
                      data_root=Path(args.data_root or os.environ.get("BENCH_DATA_ROOT") or default_data_root()),
                      timeout=args.timeout, progress=not args.no_progress, skip_bad_images=args.skip_bad_images,
                      in_process=args.in_process, resume=args.resume, packed=args.pack)


def check_backends(configs: list[RunConfig]) -> None:
    """Every framework the sweep needs is installed; asked without importing any."""
    from backends.base import check_installed
    for name in sorted({c.backend for c in configs}):
        check_installed(name)
    for name in sorted({c.pretrain_backend for c in configs if c.pretrained == "suite" and c.arm == "finetune"}):
        try:
            check_installed(name)
        except BenchError as e:
            raise ConfigError(f"the suite's pretrain step runs on --pretrain-backend {name}: {e}; "
                              "or choose another with --pretrain-backend") from None


def cmd_run(args: argparse.Namespace) -> int:
    from .report import render_table
    from .sweep import plan_sweep, run_local

    configs = build_configs(args)
    check_backends(configs)
    opts = _run_options(args)
    plan = plan_sweep(configs, opts.cache_dir)
    if args.executor == "ray":
        from .ray_executor import run_ray
        records = run_ray(plan, opts, address=args.ray_address, max_retries=args.max_retries)
    else:
        records = run_local(plan, opts)
    print()
    print(render_table(records))
    return 0 if all(r["status"] == "ok" for r in records) else 1


def cmd_list(args: argparse.Namespace) -> int:
    import importlib.util

    from architectures import all_specs
    from backends.base import REGISTRY
    from datasets.registry import EMBEDDED, REMOTE

    print("backends (pip extra):")
    for name, info in sorted(REGISTRY.items()):
        missing = [m for m in info.probe if importlib.util.find_spec(m) is None]
        state = "installed" if not missing else f"not installed (pip install -e \".[{info.extra}]\")"
        print(f"  {name:10s} [{info.extra}]  {state}")
    print("models (backends; min image size per stem; recipe):")
    for spec in all_specs():
        if not set(spec.frameworks) & set(REGISTRY):
            continue
        sizes = ", ".join(f"{stem} >= {px} px" for stem, px in spec.stems.items())
        where = ", ".join(sorted(spec.frameworks)) + ("" if spec.every_backend else " only")
        print(f"  {spec.name:20s} {where}; {sizes}\n  {'':20s} {spec.recipe.source}")
    print("experiments:")
    for e in EXPERIMENTS.values():
        print(f"  {e.name:16s} {e.description}")
    print("datasets:")
    for d in list(EMBEDDED.values()) + list(REMOTE.values()):
        print(f"  {d.name:16s} {d.description}")
    print(f"  {'cifar10':16s} CIFAR-10: the official pickled batches (downloaded, MD5 checked) or an image-folder "
          "archive (--archive PATH|URL, checksum checked)")
    print("strategies:")
    for k, v in STRATEGY_HELP.items():
        print(f"  {k:16s} {v}")
    return 0


def _readable_records(paths: list[Path], strict: bool) -> list[dict]:
    """Records under ``paths``; unreadable files are named on stderr and skipped (``--strict``: an error)."""
    from .results import read_records
    records, problems = read_records(paths)
    for problem in problems:
        print(f"bench: skipped: {problem}", file=sys.stderr)
    if problems and strict:
        raise BenchError(f"{len(problems)} unreadable record(s) under {', '.join(map(str, paths))} (--strict)")
    if not records:
        raise BenchError(f"no readable result records under {', '.join(map(str, paths))}")
    return records


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render_report

    paths = args.paths or [DEFAULT_OUT]
    records = _readable_records(paths, args.strict)
    print(render_report(records, args.format, sources=" ".join(map(str, paths))))
    if args.plots:
        from .plots import write_plots
        for path in write_plots(records, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import render_compare

    before = _readable_records([args.a], args.strict)
    after = _readable_records([args.b], args.strict)
    print(render_compare(before, after, args.format, min_effect=args.min_effect, factor=args.factor))
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Internal: the child side of ``bench run`` (one config, given as JSON)."""
    import json

    from .results import write_json_atomic
    from .runner import execute

    config = RunConfig.from_json(json.loads(args.config))
    try:
        rec = execute(config, args.out, cache_dir=args.cache_dir, data_root=args.data_root,
                      save_weights=args.save_weights, suite_weights=args.pretrained_weights,
                      progress=not args.no_progress, skip_bad_images=args.skip_bad_images, packed=args.packed)
    except BenchError as e:
        write_json_atomic(args.result_file, {"user_error": str(e)})
        return 2
    write_json_atomic(args.result_file, {"path": rec["path"]})
    return 0


def cmd_overhead(args: argparse.Namespace) -> int:
    from .overhead import run_overhead
    return run_overhead(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import run_tune
    return run_tune(args)


def _add_exec(sub) -> None:
    ex = sub.add_parser("_exec")  # internal: one isolated run (no help: hidden from `bench --help`)
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
    step = sub.add_parser("_step")  # internal: one timed train-step measurement (bench overhead/tune)
    step.add_argument("spec")
    step.add_argument("--result-file", type=Path, required=True)
    step.set_defaults(func=lambda a: __import__("bench.overhead", fromlist=["cmd_step"]).cmd_step(a))


def _add_reading(sub) -> None:
    rep = sub.add_parser("report", help="tables (and plots) from result records")
    rep.add_argument("paths", nargs="*", type=Path,
                     help=f"record files or directories (default {DEFAULT_OUT}/; the published ones: {PUBLISHED})")
    rep.add_argument("--format", choices=["terminal", "markdown"], default="terminal")
    rep.add_argument("--plots", type=Path, help="also write PNG plots (accuracy curves, gaps, step time) to DIR")
    rep.add_argument("--strict", action="store_true", help="fail if any record cannot be read")
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser("compare", help="per configuration: accuracy and step-time changes between two record sets")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    cmp_.add_argument("--format", choices=["terminal", "markdown"], default="terminal")
    cmp_.add_argument("--min-effect", type=number(0, 1, low_open=False), default=0.01,
                      help="smallest top-1 change worth marking (fraction; default 0.01)")
    cmp_.add_argument("--factor", type=number(1, low_open=False), default=1.05,
                      help="smallest step-time ratio worth marking (default 1.05)")
    cmp_.add_argument("--strict", action="store_true", help="fail if any record cannot be read")
    cmp_.set_defaults(func=cmd_compare)


def _add_speed(sub) -> None:
    from .overhead import add_overhead_args
    from .tune import add_tune_args
    ov = sub.add_parser("overhead", help="harness train step vs each framework's own minimal loop, "
                                         "side by side, one process each")
    add_overhead_args(ov)
    ov.set_defaults(func=cmd_overhead)
    tu = sub.add_parser("tune", help="time one backend's train step under each runtime setting (threads, "
                                     "oneDNN ISA, compile level, ...)")
    add_tune_args(tu)
    tu.set_defaults(func=cmd_tune)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="train fine-tuned and scratch arms, write one record per run")
    _add_run_args(run)
    run.set_defaults(func=cmd_run)
    lst = sub.add_parser("list", help="backends, models, experiments, datasets, strategies")
    lst.set_defaults(func=cmd_list)
    _add_reading(sub)
    _add_speed(sub)
    _add_exec(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
