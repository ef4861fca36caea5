"""``bench env create [BACKEND[@VERSION] ...]`` and ``bench env list``: one virtual environment per
backend (and per framework release) that its jobs then run in (``bench/execute/environments.py``)."""
from __future__ import annotations

import argparse
import sys


def _refs(texts: list[str]):
    from backends.registry import backend_names
    from bench.execute.environments import BackendRef
    return [BackendRef.parse(t) for t in (texts or backend_names())]


def cmd_create(args: argparse.Namespace) -> int:
    from bench.execute.environments import create, framework
    for ref in _refs(args.backends):  # every name checked before the first (long) build starts
        framework(ref)
    for ref in _refs(args.backends):
        marker = create(ref, force=args.force)
        name = framework(ref)
        print(f"{ref.label}: {ref.directory} ({name} {marker['packages'].get(name)}, numpy "
              f"{marker['packages'].get('numpy')}, Python {marker['python']})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench.execute.environments import BackendRef, describe, env_root, framework
    root = env_root()
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    print(f"environments under {root} (BENCH_ENV_ROOT):" if found else
          f"no environments under {root}: every backend runs in this interpreter ({sys.executable})")
    for label in found:
        try:
            ref = BackendRef.parse(label)
        except Exception as e:  # noqa: BLE001 - a folder that is not an environment of ours: said, not fatal
            print(f"  {label}: not a backend environment ({e})")
            continue
        marker = describe(ref)
        if marker is None:
            print(f"  {label}: incomplete (python -m bench env create --force {label})")
        else:
            name = framework(ref)
            print(f"  {label}: {name} {marker['packages'].get(name)}, numpy {marker['packages'].get('numpy')}, "
                  f"Python {marker['python']}, built {marker['created']}")
    return 0


def add(sub) -> None:
    p = sub.add_parser("env", help="one virtual environment per backend or framework release (bench env create)")
    env_sub = p.add_subparsers(dest="env_command", required=True, metavar="ENV_COMMAND")
    c = env_sub.add_parser("create", help="build the environments of BACKEND[@VERSION] ... (default: every "
                                          "backend) from pyproject.toml's extras; jobs of that backend then run there")
    c.add_argument("backends", nargs="*", metavar="BACKEND[@VERSION]",
                   help="e.g. torch, mxnet, torch@2.12.1 (the framework's release, as pip names it)")
    c.add_argument("--force", action="store_true", help="rebuild an environment that exists")
    c.set_defaults(func=cmd_create)
    ls = env_sub.add_parser("list", help="the environments there are, with their framework and NumPy versions")
    ls.set_defaults(func=cmd_list)
