"""``bench overhead``: the harness's train step against each framework's own minimal loop.

For every (backend, model, image size, strategy), the same network, batch, input
and optimizer (SGD, momentum 0.9) are stepped two ways, each in its own process:

* ``harness``: ``Model.train_step`` as the runner calls it (numpy batch in, mean
  loss and correct count out, synchronised);
* ``native``: ``Backend.native_step``, the framework's idiomatic minimal loop
  (Gluon ``Trainer``, MindSpore ``TrainOneStepCell``, a plain PyTorch loop) on
  tensors already in place.

Design ``processes`` (the default): the two run one after the other, never at
once (the machine lock), alternating first place over ``--rounds`` so that drift
hits both alike. Design ``interleaved``: both loops live in one process per round
and alternate step by step, a paired measurement: on a machine whose speed differs
from process to process (measured here: ±15% between processes, ±3% within one)
it resolves a few percent where separate processes cannot. Each round gives a ratio,
the harness median over the native median of that round's steady steps; the
published ratio is the median of the rounds' ratios (pooling steps across rounds
would mix processes that ran at different speeds) and their range shows how sure
it is. One JSON record per combination, naming its design, with every step time.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from .results import SCHEMA_VERSION, utc_now, write_json_atomic, write_json_new

DEFAULT_OUT = Path("runs-overhead")
LOOPS = ("native", "harness")


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_step_args(p: argparse.ArgumentParser, sizes: str) -> None:
    from .cli import integer, number
    p.add_argument("--backend", default="mxnet,mindspore,torch", help="comma-separated backends")
    p.add_argument("--model", default="resnet18", help="comma-separated architectures")
    p.add_argument("--image-size", type=_ints, default=_ints(sizes), help=f"comma-separated sizes (default {sizes})")
    p.add_argument("--batch-size", type=integer(1), default=16)
    p.add_argument("--steps", type=integer(3), default=15, help="timed steps per process")
    p.add_argument("--warmup", type=integer(0), default=3, help="steps after the compile step, not timed")
    p.add_argument("--timeout", type=number(0), default=900, help="seconds per measuring process")
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                   help="an environment setting for every measuring process (e.g. OMP_NUM_THREADS=2)")
    p.add_argument("--format", choices=["terminal", "markdown"], default="terminal")


def add_overhead_args(p: argparse.ArgumentParser) -> None:
    from .cli import integer
    add_step_args(p, "32,112")
    p.set_defaults(model="resnet18,efficientnet_lite0")
    p.add_argument("--strategy", default="full,linear-probe", help="comma-separated strategies")
    p.add_argument("--rounds", type=integer(1), default=2, help="native/harness process pairs per combination")
    p.add_argument("--design", choices=["processes", "interleaved"], default="processes",
                   help="processes: each loop in its own process; interleaved: both in one process, "
                        "alternating step by step (paired; for machines whose speed varies by process)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the records (default {DEFAULT_OUT}/)")
    p.add_argument("--from", dest="source", type=Path, help="render the table from records in DIR; measure nothing")


# --- the child: one loop, timed ----------------------------------------------------------

def _build_loop(spec: dict):
    from backends.base import OptimConfig, get_backend
    from bench.strategies import make_plan

    backend = get_backend(spec["backend"])
    optim = OptimConfig("sgd", spec["lr"], 0.9, 1e-4)
    classes, size, batch = spec["classes"], spec["image_size"], spec["batch_size"]
    if spec["loop"] == "native":
        return backend, backend.native_step(spec["model"], classes, image_size=size, batch=batch,
                                            strategy=spec["strategy"], optim=optim, mode=spec["mode"],
                                            device=spec["device"])
    model = backend.create_model(spec["model"], classes, image_size=size, mode=spec["mode"], device=spec["device"])
    model.configure(make_plan(spec["strategy"]), optim)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (batch, 3, size, size)).astype(np.float32)
    y = (np.arange(batch) % classes).astype(np.int32)
    return backend, lambda: model.train_step(x, y)


def _timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1e3


def cmd_step(args: argparse.Namespace) -> int:
    """Internal (``bench _step``): build one loop (``interleaved``: both, in the order given),
    time their steps, write the result as JSON."""
    from .environment import capture_environment
    from .settings import effective_settings
    from .timing import ContentionProbe, summarize_ms

    spec = json.loads(args.spec)
    loops = spec["loop"].split("+")
    steps = {}
    for loop in loops:
        backend, steps[loop] = _build_loop(spec | {"loop": loop})
    compile_ms = {loop: _timed(steps[loop]) for loop in loops}
    for _ in range(spec["warmup"]):
        for loop in loops:
            steps[loop]()
    probe, times = ContentionProbe().start(), {loop: [] for loop in loops}
    for i in range(spec["steps"]):
        for loop in (loops if i % 2 == 0 else loops[::-1]):  # alternate who goes first
            times[loop].append(_timed(steps[loop]))
    env = capture_environment(backend.versions(), backend.runtime_settings(), effective_settings(spec["backend"]))
    contention = probe.stop()
    results = {loop: {"compile_ms": compile_ms[loop], "steps_ms": times[loop], "stats": summarize_ms(times[loop]),
                      "contention": contention, "environment": env} for loop in loops}
    write_json_atomic(args.result_file, results[loops[0]] if len(loops) == 1 else {"loops": results})
    return 0


# --- the parent: processes one at a time ------------------------------------------------

def measure(spec: dict, settings: dict[str, str], timeout: float) -> dict:
    """Run one ``_step`` child for ``spec`` under the machine lock; its result or {"error": ...}."""
    from .settings import child_env
    from .timing import machine_lock

    with tempfile.TemporaryDirectory(prefix="bench-step-") as tmp, machine_lock():
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench", "_step", json.dumps(spec), "--result-file", str(result)]
        try:
            proc = subprocess.run(cmd, env=child_env(spec["backend"], settings), capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:g} s"}
        if proc.returncode != 0 or not result.exists():
            return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}"}
        return json.loads(result.read_text())


def step_spec(backend: str, model: str, size: int, strategy: str, loop: str, args) -> dict:
    return {"backend": backend, "model": model, "image_size": size, "strategy": strategy, "loop": loop,
            "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "classes": 5,
            "lr": 0.01, "mode": "graph", "device": "cpu"}


def overhead_record(spec: dict, results: dict[str, list[dict]], settings: dict) -> dict:
    rec = {"schema_version": SCHEMA_VERSION, "kind": "overhead", "created": utc_now(), "spec": spec,
           "settings": settings}
    for loop in LOOPS:
        ok = [r for r in results[loop] if "error" not in r]
        steps = [t for r in ok for t in r["steps_ms"]]
        rec[loop] = {"rounds": len(results[loop]), "errors": [r["error"] for r in results[loop] if "error" in r],
                     "median_ms": float(np.median(steps)) if steps else None,
                     "round_medians_ms": [r["stats"]["median_ms"] for r in ok],
                     "round_steps_ms": [r["steps_ms"] for r in ok],
                     "compile_ms": [r["compile_ms"] for r in ok], "n": len(steps),
                     "contended": any(r["contention"].get("busy") for r in ok)}
        if ok:
            rec["environment"] = ok[0]["environment"]
    n, h = rec["native"]["round_medians_ms"], rec["harness"]["round_medians_ms"]
    if rec["native"]["median_ms"] and rec["harness"]["median_ms"]:
        rec["round_ratios"] = [b / a for a, b in zip(n, h)]
        rec["ratio"] = ratio_of(rec)
    return rec


def ratio_of(rec: dict) -> float | None:
    """Harness/native of an overhead record: the median of its rounds' ratios (each round's two
    loops ran back to back or, interleaved, in one process); records without rounds keep theirs."""
    rounds = rec.get("round_ratios")
    return float(np.median(rounds)) if rounds else rec.get("ratio")


def run_combination(backend: str, model: str, size: int, strategy: str, args) -> dict:
    settings = dict(args.set)
    design = getattr(args, "design", "processes")
    results: dict[str, list[dict]] = {loop: [] for loop in LOOPS}
    for i in range(args.rounds):
        order = LOOPS if i % 2 == 0 else LOOPS[::-1]
        if design == "interleaved":
            got = measure(step_spec(backend, model, size, strategy, "+".join(order), args), settings, args.timeout)
            for loop in LOOPS:
                results[loop].append(got["loops"][loop] if "loops" in got else got)
            continue
        for loop in order:
            results[loop].append(measure(step_spec(backend, model, size, strategy, loop, args), settings,
                                         args.timeout))
    spec = {k: v for k, v in step_spec(backend, model, size, strategy, "", args).items() if k != "loop"}
    spec.update(rounds=args.rounds, design=design)
    return overhead_record(spec, results, settings)


def _design(rec: dict) -> str:
    return rec["spec"].get("design", "processes")


def merge_rounds(records: list[dict]) -> list[dict]:
    """One entry per measured combination (design, backend, model, size, strategy, batch, steps):
    records of the same combination, e.g. a re-measurement with more rounds, pool their rounds,
    so a table shows every round ever published and never picks one record over another."""
    merged: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: r.get("created", "")):
        key = json.dumps({k: v for k, v in r["spec"].items() if k not in ("rounds",)} | {"design": _design(r)},
                         sort_keys=True)
        m = merged.setdefault(key, {"spec": r["spec"] | {"design": _design(r)}, "round_ratios": [],
                                    **{loop: {"round_medians_ms": [], "errors": [], "contended": False}
                                       for loop in LOOPS}})
        m["round_ratios"] += r.get("round_ratios") or []
        for loop in LOOPS:
            m[loop]["round_medians_ms"] += r[loop]["round_medians_ms"]
            m[loop]["errors"] += r[loop]["errors"]
            m[loop]["contended"] |= bool(r[loop]["contended"])
    for m in merged.values():
        for loop in LOOPS:
            rounds = m[loop]["round_medians_ms"]
            m[loop]["median_ms"] = float(np.median(rounds)) if rounds else None
        m["ratio"] = ratio_of(m)
    return list(merged.values())


def render_overhead(records: list[dict], fmt: str = "terminal", target: float = 1.05) -> str:
    rows = []
    combos = merge_rounds(records)
    for r in sorted(combos, key=lambda r: (_design(r), r["spec"]["backend"], r["spec"]["model"],
                                           r["spec"]["image_size"], r["spec"]["strategy"])):
        s, n, h = r["spec"], r["native"], r["harness"]
        busy = " †" if n["contended"] or h["contended"] else ""
        spread = (f"{min(r['round_ratios']):.3f}–{max(r['round_ratios']):.3f}" if r["round_ratios"] else "-")
        errors = "; ".join(n["errors"] + h["errors"])
        rows.append([_design(r), s["backend"], s["model"], s["image_size"], s["strategy"],
                     "-" if n["median_ms"] is None else f"{n['median_ms']:.1f}",
                     "-" if h["median_ms"] is None else f"{h['median_ms']:.1f}",
                     ("-" if r["ratio"] is None else f"{r['ratio']:.3f}") + busy, len(r["round_ratios"]),
                     spread, errors or ""])
    headers = ["design", "backend", "model", "px", "strategy", "native ms", "harness ms", "harness/native",
               "rounds", "per round", "errors"]
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    table = tabulate(rows, headers=headers, tablefmt={"terminal": "simple", "markdown": "github"}[fmt],
                     disable_numparse=True)
    notes = []
    for design in sorted({_design(r) for r in combos}):
        ratios = [r["ratio"] for r in combos if _design(r) == design]
        within = sum(1 for x in ratios if x is not None and x <= target)
        notes.append(f"{design}: {within} of {len(ratios)} combinations at or below harness/native {target}")
    if any("†" in row[7] for row in rows):
        notes.append("† measured while other processes used > 10% of the machine's CPU")
    return table + "\n\n" + "\n\n".join(notes)


def load_kind(source: Path, kind: str) -> list[dict]:
    """The records of one kind (``overhead``, ``tune``) in ``source``; unreadable files are named and skipped."""
    from .errors import BenchError
    records = []
    for path in sorted(Path(source).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"bench: skipped: {path}: {e}", file=sys.stderr)
            continue
        if isinstance(rec, dict) and rec.get("kind") == kind:
            records.append(rec)
    if not records:
        raise BenchError(f"no {kind} records in {source}")
    return records


def generated_header(title: str, command: str, n: int, how_to_read: str) -> str:
    """The opening of a generated markdown file: what made it, from how many records, how to read it."""
    return (f"# {title}\n\nGenerated by `python -m bench {command} --format markdown` from {n} JSON records; "
            f"do not edit by hand. {how_to_read}\n")


def run_overhead(args: argparse.Namespace) -> int:
    from backends.base import check_installed

    if args.source:
        records = load_kind(args.source, "overhead")
        if args.format == "markdown":
            print(generated_header(
                "Harness overhead", f"overhead --from {args.source}", len(records),
                "Per round, the median steady-state step of the harness's `Model.train_step` over that of the "
                "framework's own minimal loop (same network, batch 16, input and SGD); harness/native: the median "
                "of the rounds' ratios, `per round`: their range; native and harness ms: the median of the rounds' "
                "medians. Records of one combination pool their rounds. Design `interleaved`: both loops in one "
                "process, alternating step by step; `processes`: each loop in its own process (see README, "
                "Fair speed)."))
        print(render_overhead(records, args.format))
        return 0
    backends = _csv(args.backend)
    for name in backends:
        check_installed(name)
    records = []
    for backend, model, size, strategy in itertools.product(backends, _csv(args.model), args.image_size,
                                                            _csv(args.strategy)):
        print(f"{backend} {model} {size}px {strategy}: ", end="", flush=True)
        rec = run_combination(backend, model, size, strategy, args)
        stamp = rec["created"].replace(":", "").replace("-", "")
        write_json_new(Path(args.out) / f"{stamp}_overhead_{backend}_{model}_{size}px_{strategy}_{os.getpid()}.json",
                          rec)
        print(f"{rec.get('ratio', float('nan')):.3f}", flush=True)
        records.append(rec)
    print()
    print(render_overhead(records, args.format))
    return 0 if all("ratio" in r for r in records) else 1
