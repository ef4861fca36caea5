"""``bench tune``: one backend's harness train step under each runtime setting.

Each candidate setting is an environment variable (the frameworks read most knobs
from the environment; the suite's own ``BENCH_*`` knobs cover the few set by
API: MindSpore's ``runtime_num_threads`` and ``jit_level``, torch's thread count,
channels-last and ``torch.compile``). One knob varies at a time from the
backend's defaults (``backends.base.REGISTRY``), each measurement in its own
process, one at a time; the fastest goes into the defaults by hand, with the
table in README ("Fair speed") generated from the record this writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

from .overhead import _csv, add_step_args, generated_header, load_kind, measure, step_spec
from .results import SCHEMA_VERSION, utc_now, write_json_new

DEFAULT_OUT = Path("runs-tune")
THREADS = ("1", "2")
# knob -> values tried (the default, whatever it is, is always measured first)
KNOBS = {
    "mxnet": {"OMP_NUM_THREADS": THREADS, "MXNET_ENGINE_TYPE": ("NaiveEngine", "ThreadedEngine"),
              "MXNET_CPU_WORKER_NTHREADS": ("2",), "MXNET_EXEC_BULK_EXEC_TRAIN": ("0",),
              "MXNET_MKLDNN_ENABLED": ("0",), "KMP_AFFINITY": ("granularity=fine,compact,1,0",)},
    "mindspore": {"ONEDNN_MAX_CPU_ISA": ("ALL", "AVX512_CORE", "AVX2"), "OMP_NUM_THREADS": THREADS,
                  "BENCH_MS_RUNTIME_THREADS": THREADS, "BENCH_MS_JIT_LEVEL": ("O0", "O1")},
    "torch": {"BENCH_TORCH_THREADS": THREADS, "OMP_NUM_THREADS": THREADS, "BENCH_TORCH_CHANNELS_LAST": ("0", "1"),
              "BENCH_TORCH_COMPILE": ("1",)},
}


def add_tune_args(p: argparse.ArgumentParser) -> None:
    add_step_args(p, "32,112")
    p.set_defaults(backend="mindspore", steps=8, warmup=2)
    from .cli import integer
    p.add_argument("--rounds", type=integer(1), default=2, help="processes per setting, model and size")
    p.add_argument("--strategy", default="full")
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="try this setting (repeatable; default: the backend's table in bench/tune.py)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the record (default {DEFAULT_OUT}/)")
    p.add_argument("--from", dest="source", type=Path, help="render the tables from records in DIR; measure nothing")


def candidates(backend: str, knobs: list[str]) -> list[tuple[str, str]]:
    if knobs:
        return [tuple(knob.split("=", 1)) for knob in knobs]
    return [(name, value) for name, values in KNOBS.get(backend, {}).items() for value in values]


def tune_backend(backend: str, args) -> dict:
    """Every setting measured in ``--rounds`` processes per model and size, settings taken
    round-robin (drift hits all alike); a cell is the median of its processes' medians."""
    from backends.base import backend_info
    from .environment import cpu_flags

    defaults = backend_info(backend).default_settings(cpu_flags()) | dict(args.set)
    settings = [("(defaults)", "")] + candidates(backend, args.knob)
    rows = [{"knob": name, "value": value, "ms": {}, "rounds_ms": {}, "compile_ms": {}, "errors": {}, "busy": False}
            for name, value in settings]
    for _ in range(args.rounds):
        for i, (name, value) in enumerate(settings):
            env = dict(args.set) | ({} if name == "(defaults)" else {name: value})
            for model in _csv(args.model):
                for size in args.image_size:
                    key = f"{model} {size}px"
                    result = measure(step_spec(backend, model, size, args.strategy, "harness", args), env,
                                     args.timeout)
                    if "error" in result:
                        rows[i]["errors"][key] = result["error"]
                        continue
                    rows[i]["rounds_ms"].setdefault(key, []).append(result["stats"]["median_ms"])
                    rows[i]["compile_ms"].setdefault(key, []).append(result["compile_ms"])
                    rows[i]["busy"] |= bool(result["contention"].get("busy"))
            print(f"  {name}={value}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in rows[i]["rounds_ms"].items()),
                  flush=True)
    for row in rows:
        row["ms"] = {key: float(np.median(medians)) for key, medians in row["rounds_ms"].items()}
    return {"schema_version": SCHEMA_VERSION, "kind": "tune", "created": utc_now(), "backend": backend,
            "defaults": defaults, "strategy": args.strategy, "batch_size": args.batch_size,
            "rounds": args.rounds, "rows": rows}


def merge_tune(records: list[dict]) -> list[dict]:
    """One table per (backend, strategy, batch): records of the same backend, e.g. more rounds
    measured later or extra knobs, pool their processes per (setting, value) row and cell; a
    cell is then the median of its processes' medians. The defaults row comes first."""
    merged: dict[tuple, dict] = {}
    for rec in sorted(records, key=lambda r: r.get("created", "")):
        key = (rec["backend"], rec["strategy"], rec["batch_size"])
        m = merged.setdefault(key, {"backend": rec["backend"], "strategy": rec["strategy"],
                                    "batch_size": rec["batch_size"], "defaults": rec["defaults"], "rows": {}})
        for row in rec["rows"]:
            r = m["rows"].setdefault((row["knob"], row["value"]), {"knob": row["knob"], "value": row["value"],
                                                                   "rounds_ms": {}, "errors": {}, "busy": False})
            for cell, medians in row.get("rounds_ms", {}).items():
                r["rounds_ms"].setdefault(cell, []).extend(medians)
            r["errors"].update({k: v for k, v in row["errors"].items() if k not in r["rounds_ms"]})
            r["busy"] |= bool(row.get("busy"))
    out = []
    for m in merged.values():
        rows = sorted(m["rows"].values(), key=lambda r: r["knob"] != "(defaults)")
        for r in rows:
            r["ms"] = {cell: float(np.median(v)) for cell, v in r["rounds_ms"].items()}
            r["errors"] = {k: v for k, v in r["errors"].items() if k not in r["ms"]}
        out.append(m | {"rows": rows})
    return out


def render_tune(rec: dict, fmt: str = "terminal") -> str:
    keys = sorted({k for row in rec["rows"] for k in row["ms"]} | {k for row in rec["rows"] for k in row["errors"]},
                  key=lambda k: (k.split(" ")[0], int(k.split(" ")[1][:-2])))
    base = rec["rows"][0]["ms"]
    body = []
    for row in rec["rows"]:
        cells = []
        for k in keys:
            if k in row["ms"]:
                ratio = f" ({row['ms'][k] / base[k]:.2f}x)" if k in base and row is not rec["rows"][0] else ""
                spread = row.get("rounds_ms", {}).get(k, [])
                spread = f" [{min(spread):.0f}–{max(spread):.0f}, n={len(spread)}]" if len(spread) > 1 else ""
                cells.append(f"{row['ms'][k]:.1f}{ratio}{spread}" + (" †" if row.get("busy") else ""))
            else:
                cells.append(row["errors"].get(k, "-"))
        body.append([row["knob"], row["value"] or ", ".join(f"{k}={v}" for k, v in rec["defaults"].items()) or "-"]
                    + cells)
    title = (f"{rec['backend']}: train step (harness, {rec['strategy']}, batch {rec['batch_size']}), median ms "
             "of the processes' medians [their range, number of processes]")
    return title + "\n\n" + tabulate(body, headers=["setting", "value"] + keys,
                                     tablefmt={"terminal": "simple", "markdown": "github"}[fmt],
                                     disable_numparse=True)


def run_tune(args: argparse.Namespace) -> int:
    from backends.base import check_installed

    if args.source:
        records = load_kind(args.source, "tune")
        if args.format == "markdown":
            print(generated_header(
                "Runtime settings tried", f"tune --from {args.source}", len(records),
                "Each cell: the median over its processes of each process's median steady-state harness train "
                "step, (ratio to the defaults' row), [range of the processes' medians, their number]; `†`: other "
                "processes used the CPU meanwhile. One setting varies at a time from the backend's defaults "
                "(first row); each measurement is its own process, and on our machine the same setting's process "
                "medians vary by tens of percent, so read a ratio against its range."))
        print("\n\n".join(("## " if args.format == "markdown" else "") + render_tune(r, args.format)
                            for r in merge_tune(records)))
        return 0
    for backend in _csv(args.backend):
        check_installed(backend)
        print(f"{backend}:", flush=True)
        rec = tune_backend(backend, args)
        stamp = rec["created"].replace(":", "").replace("-", "")
        write_json_new(Path(args.out) / f"{stamp}_tune_{backend}.json", rec)
        print(render_tune(merge_tune([rec])[0], args.format), file=sys.stdout)
    return 0
