"""Command line: ``python -m bench run | list | report | compare | overhead | tune | parity | env``.

The parser and the dispatch only: each subcommand lives in ``bench/commands/``.
User errors (BenchError) are printed as one line without a traceback, exit 2.
SIGTERM and SIGHUP end the command like Ctrl-C does, so the job it is running (and
that job's process group) is killed, never left behind (``bench/execute/child.py``).
"""
from __future__ import annotations

import argparse
import signal
import sys

from .commands import env, internal, list as list_command, parity, report, run, speed
from .core.errors import BenchError

COMMANDS = (run, list_command, report, speed, parity, env, internal)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        return args.func(args)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
