"""``bench run``: plan the sweep the options describe (pretrain steps, then arms x strategies
x seeds x scratch inits on each backend) and run it, one isolated job and one record each."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import BenchError, ConfigError
from bench.plan.config import OPTIMIZERS, PRECISIONS, SCRATCH_INITS, RunConfig
from bench.plan.experiments import EXPERIMENTS, get_experiment
from bench.plan.strategies import ALL_STRATEGIES, make_plan

from bench.plan.config import RANGES
from bench.plan.recipe import AUGMENT_ELEMENTS, DECAY_FILTERS, OPTIM_ELEMENTS, SCHEDULES

from .args import PUBLISHED, RETRIES, SEEDS, TIMEOUT, TRIALS, default_out, names, ranged, state_ranges


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", type=names, default=names("mxnet"), help="backend(s), comma-separated (see `bench list`)")
    p.add_argument("--experiment", help=f"one of {', '.join(EXPERIMENTS)} (default: digits-transfer; "
                   "the dataset's own experiment with --dataset; folder with --data-dir)")
    p.add_argument("--arms", type=names, default=names("finetune,scratch"), help="finetune,scratch (either or both)")
    p.add_argument("--strategy", help="fine-tuning strategy, comma-separated list, or 'all' "
                   "(default: the experiment's; see `bench list`)")
    p.add_argument("--model", help="architecture, or a comma-separated list (default: the experiment's, "
                   "per backend; imagenet-scale: Lite0, Lite1, Lite2)")
    p.add_argument("--dataset", help="registered dataset for the target task")
    p.add_argument("--data-dir", help="your own image folder: DIR/<split>/<class>/<image>")
    p.add_argument("--train-split", help="default: train")
    p.add_argument("--eval-split", help="default: test (canidae: val)")
    p.add_argument("--shots", type=ranged(RANGES["shots"]), help="images per class kept in the train split")
    p.add_argument("--eval-shots", type=ranged(RANGES["eval_shots"]),
                   help="images per class kept in the eval split (default: all)")
    p.add_argument("--search", type=ranged(TRIALS), metavar="N",
                   help="tune every arm and strategy alike: N quasi-random trials (lr over 3 decades around its "
                        "recipe, weight decay, schedule x1/2/4) chosen on a validation split carved from train, "
                        "never on test; the winner re-runs over --seeds and only those runs are scored on test")
    p.add_argument("--search-seed", type=ranged(RANGES["seed"]), default=0, help="the trials' sampler seed (the same points "
                   "for every arm and backend)")
    p.add_argument("--val-shots", type=ranged(RANGES["val_shots"]), help="validation images per class taken from the train split, "
                   "never among the training shots (default with --search: the experiment's)")
    p.add_argument("--val-fraction", type=ranged(RANGES["val_fraction"]),
                   help="carve this fraction of train (per class) as a validation split: the best epoch is "
                        "chosen on it and its test accuracy reported")
    p.add_argument("--classes", type=names, help="keep only these classes, comma-separated")
    p.add_argument("--archive", help="cifar10: an image-folder archive (PATH or URL); aircraft: an archive in "
                   "FGVC-Aircraft's own layout; instead of the official download")
    p.add_argument("--archive-checksum", help="ALGO:HEX of --archive (default: the known CIFAR-10 JPEG archive)")
    p.add_argument("--pretrained", help="suite | imagenet (one canonical file, every backend) | zoo (each "
                   "framework's own zoo) | none | PATH to weights (canonical .npz, or the backend's own "
                   ".params/.ckpt/.pth)")
    p.add_argument("--pretrain-backend", help="backend that runs the suite's pretrain step once, "
                   "writing canonical weights every backend starts from (default: mxnet)")
    p.add_argument("--scratch-init", choices=SCRATCH_INITS + ("both",),
                   help="scratch arm: shared (one canonical random init per architecture, classes and seed, "
                        "the same on every backend; default), native (each framework's initialiser), or both")
    p.add_argument("--epochs", type=ranged(RANGES["epochs"]))
    p.add_argument("--batch-size", type=ranged(RANGES["batch_size"]))
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=ranged(RANGES["lr"]), help="base lr of the fine-tuned arms")
    p.add_argument("--scratch-lr", type=ranged(RANGES["lr"]), help="lr of the scratch arm")
    p.add_argument("--momentum", type=ranged(RANGES["momentum"]))
    p.add_argument("--weight-decay", "--wd", type=ranged(RANGES["weight_decay"]), dest="weight_decay")
    p.add_argument("--image-size", type=ranged(RANGES["image_size"]), help="train crop / eval crop size in pixels "
                   "(at least the architecture's minimum, see `bench list`)")
    p.add_argument("--device", choices=["cpu", "gpu", "ascend"])
    p.add_argument("--precision", choices=PRECISIONS, help="fp32, or mixed precision: bf16 / fp16 compute with "
                   "fp32 master weights (loss scaling for fp16); a framework that cannot says so (default fp32)")
    p.add_argument("--stem", choices=["imagenet", "cifar"],
                   help="ResNet stem: the zoo's 7x7/2 conv + max-pool, or CIFAR-style 3x3/1 conv and no pool")
    p.add_argument("--bn-stats", choices=["train", "frozen"],
                   help="frozen: BatchNorm running statistics fixed in every stage while gamma/beta "
                        "train (fine-tuned arms; the EfficientNet advice for small batches)")
    p.add_argument("--mode", choices=["graph", "pynative"],
                   help="graph: compiled step (MindSpore GRAPH_MODE, Gluon hybridize); pynative: eager")
    p.add_argument("--loader", choices=["shared", "native"], help="shared numpy pipeline or the framework's own")
    p.add_argument("--seed", type=ranged(RANGES["seed"]), default=0, help="first seed")
    p.add_argument("--seeds", type=ranged(SEEDS), default=1, help="number of seeds per configuration")
    p.add_argument("--target-accuracy", type=ranged(RANGES["target_accuracy"]),
                   help="time-to-accuracy target (a fraction)")
    add_recipe_args(p)
    add_augment_args(p)
    p.add_argument("--warmup-steps", type=ranged(RANGES["warmup_steps"]),
                   help="steps after the compile step excluded from stats")
    p.add_argument("--out", type=Path, help=f"directory for the JSON records (default: runs/ of the checkout, or "
                   f"BENCH_OUT; publish with --out {PUBLISHED})")
    p.add_argument("--cache-dir", type=Path, help="pretrained-weight cache (env BENCH_CACHE_DIR)")
    p.add_argument("--data-root", type=Path, help="downloaded/embedded data cache (env BENCH_DATA_ROOT)")
    p.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images instead of failing")
    p.add_argument("--timeout", type=ranged(TIMEOUT), help="per-job time limit in seconds (the job is recorded as "
                   "failed); default: derived per job from its declared budget (docs/commands.md)")
    p.add_argument("--in-process", action="store_true",
                   help="run jobs in this process instead of one subprocess each (debugging)")
    p.add_argument("--resume", action="store_true",
                   help="skip configurations that already have an ok record (same config hash) in --out")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one subprocess at a time here; ray: the same jobs as Ray tasks")
    p.add_argument("--ray-address", help="ray: the cluster to join (auto, HOST:PORT); default: start one here")
    p.add_argument("--ray-envs", choices=["runtime", "nodes"], default=None,
                   help="ray: where a backend with its own environment runs on each node: runtime (default): "
                        "Ray builds it as a runtime environment from the driver's exact package versions; "
                        "nodes: the nodes' own, under the driver's BENCH_ENV_ROOT")
    p.add_argument("--pack", action="store_true",
                   help="accuracy-only sweep: jobs may share a machine; step times are marked packed and "
                        "kept out of speed tables and gates")
    p.add_argument("--max-retries", type=ranged(RETRIES), default=0,
                   help="ray: retries of a job whose worker died (default 0: a crash is a record, never hidden)")
    p.add_argument("--no-progress", action="store_true")


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole epochs separated by commas, e.g. 30,60; got {text!r}") from None


RECIPE_OPTIONS, AUGMENT_OPTIONS = tuple(OPTIM_ELEMENTS), tuple(AUGMENT_ELEMENTS)


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    """The recipe's elements (bench/plan/recipe.py says what each means on every backend)."""
    g = p.add_argument_group("recipe elements (one meaning on every backend: bench/plan/recipe.py)")
    g.add_argument("--schedule", choices=SCHEDULES, help="lr per step: constant (default), step (--milestones, "
                   "--lr-gamma) or cosine (to --min-lr), after the warm-up")
    g.add_argument("--lr-warmup-epochs", type=ranged(RANGES["lr_warmup_epochs"]),
                   help="linear lr warm-up over the first N epochs")
    g.add_argument("--lr-warmup-steps", type=ranged(RANGES["lr_warmup_steps"]), help="... or over the first N steps")
    g.add_argument("--lr-warmup-factor", type=ranged(RANGES["lr_warmup_factor"]),
                   help="the warm-up's first lr as a fraction of --lr (MindCV's warmup_factor; default 0)")
    g.add_argument("--milestones", type=_milestones, help="step schedule: epochs where the lr is multiplied by --lr-gamma")
    g.add_argument("--lr-gamma", type=ranged(RANGES["lr_gamma"]), help="step schedule's factor (default 0.1)")
    g.add_argument("--min-lr", type=ranged(RANGES["min_lr"]), help="cosine schedule: the last step's lr (default 0)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum (--no-nesterov: plain)")
    g.add_argument("--label-smoothing", type=ranged(RANGES["label_smoothing"]),
                   help="soft targets (1 - eps) onehot + eps / K, eps in [0, 1)")
    g.add_argument("--decay-filter", choices=DECAY_FILTERS, help="weight decay on all trained tensors (default) or "
                   "not on biases and BatchNorm (no-bias-bn, MindCV's filter_bias_and_bn)")


def add_augment_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("augmentation (the shared pipeline: every backend sees the same pixels; "
                             "datasets/augment.py)")
    a.add_argument("--color-jitter", type=ranged(RANGES["color_jitter"]),
                   help="brightness, contrast and saturation strength (MindCV: 0.4)")
    a.add_argument("--rand-augment", help="timm/MindCV RandAugment config, e.g. randaug-m7-mstd0.5 (m in 0..10)")
    a.add_argument("--re-prob", type=ranged(RANGES["re_prob"]), help="RandomErasing probability")
    a.add_argument("--crop-pct", type=ranged(RANGES["crop_pct"]), help="eval: resize to floor(size / crop_pct), "
                   "then center crop (MindCV 0.875; default: 256/224)")


def _known_archive_checksum() -> str:
    from datasets.cifar import KNOWN_FOLDER_ARCHIVES
    return next(iter(KNOWN_FOLDER_ARCHIVES))


def _archive_is_cifar(args: argparse.Namespace) -> bool:
    """--archive without --archive-checksum defaults to the known CIFAR-10 archive's checksum for
    CIFAR-10 only; another dataset's archive is pinned on first use."""
    return (args.dataset or get_experiment(_experiment_name(args)).dataset) == "cifar10"


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
                  eval_shots=args.eval_shots, val_fraction=args.val_fraction, val_shots=args.val_shots, classes=args.classes,
                  archive=args.archive, archive_checksum=args.archive_checksum or (
                      _known_archive_checksum() if args.archive and _archive_is_cifar(args) else None),
                  pretrained=args.pretrained, pretrain_backend=args.pretrain_backend, epochs=args.epochs,
                  batch_size=args.batch_size, optimizer=args.optimizer, momentum=args.momentum,
                  weight_decay=args.weight_decay, image_size=args.image_size, stem=args.stem,
                  bn_stats=args.bn_stats, device=args.device, mode=args.mode, loader=args.loader,
                  precision=args.precision,
                  target_accuracy=args.target_accuracy, warmup_steps=args.warmup_steps,
                  **{name: getattr(args, name) for name in RECIPE_OPTIONS + AUGMENT_OPTIONS})
    if args.data_dir:
        common["dataset"] = "folder"
    elif args.dataset and args.eval_split is None:
        from datasets.registry import dataset_splits
        common["train_split"], common["eval_split"] = dataset_splits(args.dataset)
    return common


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    """Expand CLI choices into one RunConfig per (backend, seed, arm, strategy, scratch init)."""
    experiment = get_experiment(_experiment_name(args))
    arms = list(args.arms)
    for arm in arms:
        if arm not in ("finetune", "scratch"):
            raise ConfigError(f"unknown arm {arm!r} in --arms; valid: finetune, scratch")
    strategy = args.strategy or experiment.strategy
    try:
        strategies = list(ALL_STRATEGIES) if strategy == "all" else names(strategy)
    except argparse.ArgumentTypeError as e:
        raise ConfigError(f"--strategy: {e}") from None
    for s in strategies:
        make_plan(s)  # validates
    if "scratch" in strategies and "scratch" not in arms:
        arms.append("scratch")
    inits = list(SCRATCH_INITS) if args.scratch_init == "both" else [args.scratch_init or "shared"]
    try:
        models = names(args.model) if args.model else list(experiment.model_sweep) or [None]
    except argparse.ArgumentTypeError as e:
        raise ConfigError(f"--model: {e}") from None
    from bench.execute.environments import BackendRef
    refs = [BackendRef.parse(b) for b in args.backend]  # torch, or torch@2.12.1: one release in its environment
    configs = []
    for model in models:
        common = _common_overrides(args) | {"model": model}
        for ref in refs:
            backend, common["framework_version"] = ref.name, ref.version
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


def make_studies(configs: list[RunConfig], args: argparse.Namespace):
    """One study per configuration of the first seed (every arm, strategy, scratch init and backend)."""
    from bench.plan.study import Study
    val = {} if args.val_shots or args.val_fraction else {"val_shots": get_experiment(_experiment_name(args)).val_shots}
    return [Study(c.replace(seed=0, **val), args.search, args.search_seed) for c in configs if c.seed == args.seed]


def _run_options(args: argparse.Namespace):
    import os

    from bench.execute.local import RunOptions
    from bench.core.files import default_cache_dir
    from datasets.registry import default_data_root
    return RunOptions(out=args.out or default_out(), cache_dir=Path(args.cache_dir or default_cache_dir()),
                      data_root=Path(args.data_root or os.environ.get("BENCH_DATA_ROOT") or default_data_root()),
                      timeout=args.timeout, progress=not args.no_progress, skip_bad_images=args.skip_bad_images,
                      in_process=args.in_process, resume=args.resume, packed=args.pack)


def check_backends(configs: list[RunConfig]) -> list[str]:
    """Every framework the sweep needs is installed (here, or in the backend's own environment) and
    builds its model; asked without importing any. Returns the backends that run in environments of
    their own."""
    from backends.registry import backend_info, check_installed, models_for
    from bench.execute.environments import BackendRef, check_backend
    refs = sorted({BackendRef(c.backend, c.framework_version) for c in configs}, key=lambda ref: ref.label)
    own = [ref.label for ref in refs if check_backend(ref)]
    for backend, model in sorted({(c.backend, c.model) for c in configs}):
        if not backend_info(backend).builds(backend, model):
            raise ConfigError(f"model {model!r} is not available on backend {backend!r}; "
                              f"that backend has: {', '.join(models_for(backend))}")
    for name in sorted({c.pretrain_backend for c in configs if c.pretrained == "suite" and c.arm == "finetune"}):
        try:
            check_installed(name)
        except BenchError as e:
            raise ConfigError(f"the suite's pretrain step runs on --pretrain-backend {name}: {e}; "
                              "or choose another with --pretrain-backend") from None
    return own


def cmd_run(args: argparse.Namespace) -> int:
    from bench.execute.local import run_local
    from bench.plan.sweep import plan_sweep
    from bench.measure.environment import PROJECT_ROOT
    from bench.report.explain import published_records, render_what_was_measured
    from bench.report.tables import render_table

    from bench.plan.preflight import check_sweep

    if args.executor != "ray" and (args.ray_address or args.max_retries or args.ray_envs):
        raise ConfigError("--ray-address, --ray-envs and --max-retries are for --executor ray; the local executor "
                          "runs every job here, once, in each backend's environment here")
    configs = build_configs(args)
    own = check_backends(configs)
    if own and args.in_process:
        raise ConfigError(f"--in-process runs every job in this interpreter, and {', '.join(own)} run(s) in an "
                          "environment of its own (bench env create): leave out --in-process")
    opts = _run_options(args)
    if args.executor == "ray":
        from bench.execute.ray_executor import import_ray
        import_ray()  # before anything is written: a missing Ray is one line
    check_sweep(configs, opts.out, opts.cache_dir, opts.data_root)
    if args.executor != "ray":  # the machine's peak, measured once, alone, for every record's environment
        import sys

        from bench.execute.peak import ensure_peak
        try:
            ensure_peak()
        except BenchError as e:
            print(f"bench: warning: {e}; records carry no peak", file=sys.stderr)
    if args.executor == "ray":
        from bench.execute.ray_executor import run_ray

        def run_plan(plan, opts):
            return run_ray(plan, opts, address=args.ray_address, max_retries=args.max_retries,
                           envs=args.ray_envs or "runtime")
    else:
        run_plan = run_local
    if args.search:
        from bench.execute.studies import run_studies
        records = run_studies(make_studies(configs, args), list(range(args.seed, args.seed + args.seeds)), opts,
                              run_plan)
    else:
        records = run_plan(plan_sweep(configs, opts.cache_dir), opts)
    print()
    print(render_table(records))
    explained = render_what_was_measured(records, published_records(PROJECT_ROOT / PUBLISHED), args.backend)
    if explained:
        print("\n" + explained)
    return 0 if all(r["status"] == "ok" for r in records) else 1


def add(sub) -> None:
    run = sub.add_parser("run", help="train fine-tuned and scratch arms, write one record per run")
    add_run_args(run)
    state_ranges(run)
    run.set_defaults(func=cmd_run)
