"""``bench parity``: does a recipe update the same on two or more backends? K steps on each backend,
from one canonical weights file and the same batches, each compared step by step with the NumPy
reference of the protocol (``bench/parity``); each backend in its own process."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.core.errors import ConfigError
from bench.plan.config import OPTIMIZERS, RANGES, Range, RunConfig

from .args import names, ranged
from .run import RECIPE_OPTIONS, add_recipe_args, check_backends

STEPS_PER_EPOCH = Range(1, 1000, integer=True)


def add(sub) -> None:
    p = sub.add_parser("parity", help="K training steps of a recipe on several backends against the NumPy "
                       "reference, step by step (a porting check)")
    p.add_argument("--backend", type=names, default=names("torch,mxnet,mindspore"),
                   help="backends, comma-separated (default: torch,mxnet,mindspore)")
    p.add_argument("--model", default="resnet18", help="resnet18, resnet50 or mobilenet_v3_small (the NumPy "
                   "reference's families)")
    p.add_argument("--strategy", default="freeze-1+layerwise", help="a strategy, or two joined by '+' "
                   "(default freeze-1+layerwise: a frozen stem and per-stage multipliers)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum")
    p.add_argument("--lr", type=ranged(RANGES["lr"]), default=0.01)
    p.add_argument("--momentum", type=ranged(RANGES["momentum"]), default=0.9)
    p.add_argument("--weight-decay", "--wd", type=ranged(RANGES["weight_decay"]), default=5e-3, dest="weight_decay")
    p.add_argument("--epochs", type=ranged(RANGES["epochs"]), default=3)
    p.add_argument("--steps-per-epoch", type=ranged(STEPS_PER_EPOCH), default=2,
                   help="K = epochs x steps per epoch (default 3 x 2)")
    p.add_argument("--batch-size", type=ranged(RANGES["batch_size"]), default=4)
    p.add_argument("--image-size", type=ranged(RANGES["image_size"]), default=32)
    p.add_argument("--stem", choices=["imagenet", "cifar"], default="imagenet")
    p.add_argument("--seed", type=ranged(RANGES["seed"]), default=0)
    p.add_argument("--weights", type=Path, help="canonical .npz to start from (default: the first backend's own "
                   "initialisation at --seed, written once and read by every backend)")
    p.add_argument("--json", type=Path, help="also write every backend's per-step result here")
    p.add_argument("--timeout", type=float, default=900, help="seconds per backend (default 900)")
    add_recipe_args(p)
    p.set_defaults(func=cmd_parity, schedule="cosine", lr_warmup_epochs=1, lr_warmup_factor=0.1, min_lr=1e-4,
                   nesterov=True, label_smoothing=0.1, decay_filter="no-bias-bn")


def parity_config(args: argparse.Namespace, backend: str) -> RunConfig:
    fields = {name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None}
    config = RunConfig(backend=backend, model=args.model, strategy=args.strategy, optimizer=args.optimizer,
                       lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, epochs=args.epochs,
                       batch_size=args.batch_size, image_size=args.image_size, stem=args.stem, seed=args.seed,
                       pretrained="none", **fields)  # the starting weights are --weights or the first backend's init
    config.check_model()
    return config


def _check(args: argparse.Namespace) -> list[RunConfig]:
    from architectures import get_spec
    from bench.parity.nets import FAMILIES
    from bench.plan.strategies import make_plan
    make_plan(args.strategy)
    if get_spec(args.model).family not in FAMILIES:
        raise ConfigError(f"--model {args.model}: the NumPy reference defines the {', '.join(FAMILIES)} families")
    if args.weights is not None and not args.weights.is_file():
        raise ConfigError(f"--weights {args.weights}: no such file (a canonical .npz)")
    configs = [parity_config(args, b) for b in args.backend]
    check_backends(configs)
    return configs


def _run_child(config: RunConfig, steps_per_epoch: int, weights: Path, init: bool, timeout: float) -> dict:
    from backends.settings import child_env
    from bench.execute.child import run_bench_child
    from bench.execute.environments import BackendRef, check
    python = check(BackendRef(config.backend, config.framework_version))  # its own environment, where it has one
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as tmp:
        out, err = Path(tmp) / "result.json", Path(tmp) / "stderr.txt"
        cmd = ["_parity", json.dumps(config.to_json()), str(steps_per_epoch), str(weights), "--result-file", str(out)]
        with open(err, "w") as stderr:
            code = run_bench_child(cmd + (["--init"] if init else []), child_env(config.backend), timeout, stderr,
                                   python=python)
        if code == 0 and out.exists():
            return json.loads(out.read_text())
        why = "timed out" if code is None else f"exit code {code}"
        tail = err.read_text(errors="replace").strip().splitlines()[-3:]
        return {"backend": config.backend, "error": f"{why}: {' | '.join(tail)}"}


def cmd_parity(args: argparse.Namespace) -> int:
    from bench.parity.table import render
    from bench.records.store import write_json_atomic
    configs = _check(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-parity-weights-") as tmp:
        weights, init = (args.weights, False) if args.weights else (Path(tmp) / f"{args.model}.npz", True)
        for config in configs:
            print(f"parity: {config.backend} ...", file=sys.stderr, flush=True)
            results.append(_run_child(config, args.steps_per_epoch, weights, init and not results, args.timeout))
            if init and not Path(weights).exists():
                break  # the first backend could not write the starting weights: nothing to compare
    print(render(results))
    if args.json:
        write_json_atomic(args.json, results)
    from bench.parity.check import worst
    return 0 if all("steps" in r and worst(r)["ok"] for r in results) and len(results) == len(configs) else 1
