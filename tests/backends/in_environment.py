"""Backend checks run inside a backend's own environment (``bench env create``), where the other backends
are not: ``python -m tests.backends.in_environment OP JSON``
prints one JSON line. ``tests/backends/test_own_environments.py`` starts it with that environment's
interpreter and compares what it prints with the backends installed in the test run's.

The backend's own test modules run there under pytest; these OPs are what needs a second backend to
compare with, or a backend-neutral test module that skips with one backend: ``logits``
(canonical weights file + input file -> logits file, per case), ``strategies`` (per architecture and
strategy: canonical name -> lr and weight decay, and the parameter counts), ``steps`` (one train step
per architecture and precision: finite loss, and the precision report); ``several`` runs a list of them
in one process, where each network's initialisation is compiled once for all of them.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from backends.base import OptimConfig
from backends.registry import get_backend
from bench.plan.strategies import ALL_STRATEGIES, make_plan



def logits(backend: str, cases: list[dict]) -> list[dict]:
    out = []
    for case in cases:
        model = get_backend(backend).create_model(case["arch"], 10, image_size=case["size"], stem=case["stem"],
                                                  seed=17)
        report = model.load_weights(case["weights"])
        np.save(case["out"], model.predict(np.load(case["input"])))
        out.append({"dropped": report.dropped, "missing": report.missing})
    return out


def strategies(backend: str, archs: list[str], classes: int, size: int) -> dict:
    out = {}
    for arch in archs:
        for strategy in ALL_STRATEGIES:
            model = get_backend(backend).create_model(arch, classes, image_size=size)
            model.configure(make_plan(strategy), OptimConfig(lr=0.01, weight_decay=1e-4))
            rename = model.table.to_canonical
            out[f"{arch} {strategy}"] = {
                "lr": {rename(n): lr for lr, names in model.param_groups().items() for n in names},
                "wd": {rename(n): wd for wd, names in model.weight_decay_groups().items() for n in names},
                "counts": model.param_counts()}
    return out


def steps(backend: str, archs: list[str], precisions: list[str], classes: int, size: int) -> dict:
    out = {}
    x = np.random.default_rng(0).normal(0, 1, (4, 3, size, size)).astype(np.float32)
    for arch in archs:
        for precision in precisions:
            model = get_backend(backend).create_model(arch, classes, image_size=size)
            model.configure(make_plan("head-lr-x10"), OptimConfig(lr=0.01), precision=precision)
            loss, correct = model.train_step(x, np.array([0, 1, 2, 0], np.int32))
            out[f"{arch} {precision}"] = {"loss": loss, "correct": correct, "report": model.precision_report()}
    return out


def several(backend: str, calls: list[list]) -> list:
    """``[[op, args], ...]``: each op's result, in order, from this one process."""
    return [OPS[op](backend=backend, **args) for op, args in calls]


OPS = {"logits": logits, "strategies": strategies, "steps": steps, "several": several}

if __name__ == "__main__":
    op, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(OPS[op](**args)))
