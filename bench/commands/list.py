"""``bench list``: backends (with their pip extra and whether installed), models with their
recipes and minimum sizes, experiments, datasets, strategies."""
from __future__ import annotations

import argparse


def cmd_list(args: argparse.Namespace) -> int:
    from architectures import all_specs
    from backends.registry import backend_info, backend_names, missing_modules
    from bench.plan.experiments import EXPERIMENTS
    from bench.plan.strategies import STRATEGY_HELP
    from datasets.registry import EMBEDDED, REMOTE

    names = backend_names()
    print("backends (pip extra):")
    for name in names:
        info = backend_info(name)
        state = "installed" if not missing_modules(name) else f"not installed (pip install -e \".[{info.extra}]\")"
        print(f"  {name:10s} [{info.extra}]  {state}")
    print("models (backends; min image size per stem; recipe):")
    for spec in all_specs():
        where = [b for b in names if backend_info(b).builds(b, spec.name)]
        if not where:
            continue
        sizes = ", ".join(f"{stem} >= {px} px" for stem, px in spec.stems.items())
        print(f"  {spec.name:20s} {', '.join(where)}{'' if spec.every_backend else ' only'}; {sizes}\n"
              f"  {'':20s} {spec.recipe.source}")
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


def add(sub) -> None:
    sub.add_parser("list", help="backends, models, experiments, datasets, strategies").set_defaults(func=cmd_list)
