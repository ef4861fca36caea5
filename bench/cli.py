"""Command line: ``python -m bench run | list | report``.

User errors (BenchError) are printed as one line without a traceback, exit 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import RunConfig
from .errors import BenchError, ConfigError
from .experiments import EXPERIMENTS, get_experiment
from .strategies import ALL_STRATEGIES, STRATEGY_HELP, make_plan

DEFAULT_OUT = Path("results") / "runs"


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


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
    p.add_argument("--shots", type=int, help="images per class kept in the train split")
    p.add_argument("--eval-shots", type=int, help="images per class kept in the eval split (default: all)")
    p.add_argument("--classes", type=_csv, help="keep only these classes, comma-separated")
    p.add_argument("--archive", help="cifar10: an image-folder archive (PATH or URL) instead of the official download")
    p.add_argument("--archive-checksum", help="ALGO:HEX of --archive (default: the known CIFAR-10 JPEG archive)")
    p.add_argument("--pretrained", help="suite | imagenet | none | PATH to weights "
                   "(canonical .npz, or the backend's own .params/.ckpt)")
    p.add_argument("--pretrain-backend", help="backend that runs the suite's pretrain step once, "
                   "writing canonical weights every backend starts from (default: mxnet)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"])
    p.add_argument("--lr", type=float, help="base lr of the fine-tuned arms")
    p.add_argument("--scratch-lr", type=float, help="lr of the scratch arm")
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", "--wd", type=float, dest="weight_decay")
    p.add_argument("--image-size", type=int, help="train crop / eval crop size in pixels")
    p.add_argument("--device", choices=["cpu", "gpu", "ascend"])
    p.add_argument("--stem", choices=["imagenet", "cifar"],
                   help="ResNet stem: the zoo's 7x7/2 conv + max-pool, or CIFAR-style 3x3/1 conv and no pool")
    p.add_argument("--bn-stats", choices=["train", "frozen"],
                   help="frozen: BatchNorm running statistics fixed in every stage while gamma/beta "
                        "train (fine-tuned arms; the EfficientNet advice for small batches)")
    p.add_argument("--mode", choices=["graph", "pynative"],
                   help="graph: compiled step (MindSpore GRAPH_MODE, Gluon hybridize); pynative: eager")
    p.add_argument("--loader", choices=["shared", "native"], help="shared numpy pipeline or the framework's own")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds per configuration")
    p.add_argument("--target-accuracy", type=float, help="time-to-accuracy target (fraction)")
    p.add_argument("--warmup-steps", type=int, help="steps after the compile step excluded from stats")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the JSON records")
    p.add_argument("--cache-dir", type=Path, help="pretrained-weight cache (env BENCH_CACHE_DIR)")
    p.add_argument("--data-root", type=Path, help="downloaded/embedded data cache (env BENCH_DATA_ROOT)")
    p.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images instead of failing")
    p.add_argument("--timeout", type=float, help="per-run time limit in seconds (the run is recorded as failed)")
    p.add_argument("--in-process", action="store_true",
                   help="run configurations in this process instead of one subprocess each")
    p.add_argument("--resume", action="store_true",
                   help="skip configurations that already have an ok record (same config hash) in --out")
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


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    """Expand CLI choices into one RunConfig per (backend, arm, strategy, seed)."""
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
    common = dict(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                  train_split=args.train_split, eval_split=args.eval_split, shots=args.shots, eval_shots=args.eval_shots,
                  classes=args.classes, archive=args.archive,
                  archive_checksum=args.archive_checksum or (_known_archive_checksum() if args.archive else None),
                  pretrained=args.pretrained, pretrain_backend=args.pretrain_backend, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay,
                  image_size=args.image_size, stem=args.stem, bn_stats=args.bn_stats, device=args.device, mode=args.mode, loader=args.loader,
                  target_accuracy=args.target_accuracy, warmup_steps=args.warmup_steps)
    if args.data_dir:
        common["dataset"] = "folder"
    elif args.dataset and args.eval_split is None:
        from datasets.registry import dataset_splits
        common["train_split"], common["eval_split"] = dataset_splits(args.dataset)
    configs = []
    for backend in _csv(args.backend):
        for seed in range(args.seed, args.seed + args.seeds):
            for arm in arms:
                arm_strategies = ["scratch"] if arm == "scratch" else [s for s in strategies if s != "scratch"]
                if arm == "finetune" and not arm_strategies:
                    continue
                lr = args.scratch_lr if arm == "scratch" else args.lr
                for s in arm_strategies:
                    configs.append(experiment.arm_config(backend, arm, s, seed=seed, lr=lr, **common))
    return configs


def _finished_records(out: Path) -> dict[str, dict]:
    """config hash -> an ok record already in ``out``."""
    from .results import read_record
    records = [read_record(p) for p in sorted(Path(out).glob("*.json"))] if Path(out).is_dir() else []
    return {r["config_hash"]: r for r in records if r.get("status") == "ok"}


def cmd_run(args: argparse.Namespace) -> int:
    from .isolate import execute_isolated
    from .report import render_table
    from .runner import execute

    configs = build_configs(args)
    from backends.base import get_backend
    for name in {c.backend for c in configs}:
        get_backend(name)  # fail fast on an unknown or uninstalled backend
    for name in {c.pretrain_backend for c in configs if c.pretrained == "suite" and c.arm == "finetune"}:
        try:
            get_backend(name)
        except BenchError as e:
            raise ConfigError(f"the suite's pretrain step runs on --pretrain-backend {name}: {e}; "
                              "or choose another with --pretrain-backend") from None
    done = _finished_records(args.out) if args.resume else {}
    records = []
    for i, config in enumerate(configs, 1):
        if config.config_hash() in done:
            print(f"[{i}/{len(configs)}] skip (--resume): ok record {done[config.config_hash()]['run_id']}")
            records.append(done[config.config_hash()])
            continue
        print(f"[{i}/{len(configs)}] {config.backend} {config.model} {config.experiment} "
              f"{config.arm} strategy={config.strategy} seed={config.seed}", flush=True)
        if args.in_process:
            rec = execute(config, args.out, cache_dir=args.cache_dir, data_root=args.data_root,
                          progress=not args.no_progress, skip_bad_images=args.skip_bad_images)
        else:
            rec = execute_isolated(config, args.out, timeout=args.timeout, cache_dir=args.cache_dir,
                                   data_root=args.data_root, progress=not args.no_progress,
                                   skip_bad_images=args.skip_bad_images)
        if rec["status"] != "ok":
            print(f"  {rec['status']}: {rec['error']}", file=sys.stderr)
        else:
            print(f"  top-1 {rec['accuracy']['final']:.3f} -> {rec['path']}")
        records.append(rec)
    print()
    print(render_table(records))
    return 0 if all(r["status"] == "ok" for r in records) else 1


def cmd_list(args: argparse.Namespace) -> int:
    from backends.base import REGISTRY
    from datasets.registry import EMBEDDED, REMOTE

    from .architectures import models_for
    print("backends (pip extra):")
    for name, (_, extra) in sorted(REGISTRY.items()):
        print(f"  {name:10s} [{extra}]  models: {', '.join(models_for(name))}")
    print("experiments:")
    for e in EXPERIMENTS.values():
        print(f"  {e.name:16s} {e.description}")
    print("datasets:")
    for d in list(EMBEDDED.values()) + list(REMOTE.values()):
        print(f"  {d.name:16s} {d.description}")
    print("strategies:")
    for k, v in STRATEGY_HELP.items():
        print(f"  {k:16s} {v}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render_environments, render_gaps, render_strategy_matrix, render_table
    from .results import load_records

    records = load_records(args.paths or [DEFAULT_OUT])
    if not records:
        raise BenchError(f"no result records under {', '.join(map(str, args.paths or [DEFAULT_OUT]))}")
    md = args.format == "markdown"
    if md:
        sources = " ".join(str(p) for p in (args.paths or [DEFAULT_OUT]))
        print(f"# Results\n\nGenerated by `python -m bench report --format markdown {sources}` from "
              f"{len(records)} JSON records; do not edit by hand. Accuracy is top-1 on the eval split "
              "(fraction); `mean ± sd [lo, hi]` over seeds with the 95% t interval of the mean, or "
              "one run's top-1 with its 95% Wilson interval over the eval images. "
              "Times: steady-state train step (compile step and warm-up excluded); time to target "
              "is cumulative training time, evaluation excluded.\n")
    if md:
        print("## Strategy × backend (top-1, mean ± sd (seeds))\n")
        print(render_strategy_matrix(records, args.format) + "\n\n## All configurations\n")
    else:
        print(render_strategy_matrix(records, args.format) + "\n")
    print(render_table(records, args.format))
    gaps = render_gaps(records, args.format)
    if gaps:
        print("\n### Fine-tuned minus scratch (top-1)\n" if md else "\nfine-tuned minus scratch:")
        print(gaps)
    print()
    print(("### Measured on\n\n" if args.format == "markdown" else "measured on:\n")
          + render_environments(records, args.format))
    if args.plots:
        from .plots import write_plots
        for path in write_plots(records, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import render_compare
    from .results import load_records

    print(render_compare(load_records([args.a]), load_records([args.b]), args.format))
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Internal: the child side of ``bench run`` (one config, given as JSON)."""
    import json

    from .results import write_json_atomic
    from .runner import execute

    config = RunConfig.from_json(json.loads(args.config))
    try:
        rec = execute(config, args.out, cache_dir=args.cache_dir, data_root=args.data_root,
                      progress=not args.no_progress, skip_bad_images=args.skip_bad_images)
    except BenchError as e:
        write_json_atomic(args.result_file, {"user_error": str(e)})
        return 2
    write_json_atomic(args.result_file, {"path": rec["path"]})
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train fine-tuned and scratch arms, write one record per run")
    _add_run_args(run)
    run.set_defaults(func=cmd_run)
    cmp_ = sub.add_parser("compare", help="ratios between two record files or folders, with significance")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    cmp_.add_argument("--format", choices=["terminal", "markdown"], default="terminal")
    cmp_.set_defaults(func=cmd_compare)
    ex = sub.add_parser("_exec")  # internal: one isolated run
    ex.add_argument("config")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--result-file", type=Path, required=True)
    ex.add_argument("--cache-dir", type=Path)
    ex.add_argument("--data-root", type=Path)
    ex.add_argument("--no-progress", action="store_true")
    ex.add_argument("--skip-bad-images", action="store_true")
    ex.set_defaults(func=cmd_exec)
    lst = sub.add_parser("list", help="backends, models, experiments, datasets, strategies")
    lst.set_defaults(func=cmd_list)
    rep = sub.add_parser("report", help="tables from result records")
    rep.add_argument("paths", nargs="*", type=Path, help=f"record files or directories (default {DEFAULT_OUT})")
    rep.add_argument("--format", choices=["terminal", "markdown"], default="terminal")
    rep.add_argument("--plots", type=Path, help="also write PNG plots (accuracy curves, step time) to DIR")
    rep.set_defaults(func=cmd_report)
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
