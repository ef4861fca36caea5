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
it is. A combination whose rounds disagree (their ratios spread wider than
``--spread``) gets further rounds, one at a time, up to ``--max-rounds``: the rule
reads the spread only, never the ratio or the target, so it samples a noisy
combination more without steering its result (measured here: MindSpore's
EfficientNet-Lite0 linear probe at 32 px gave rounds from 0.97 to 1.22, each
process settling on its own ratio). One JSON record per combination, naming its
design, with every step time.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from bench.core.files import default_cache_dir
from bench.execute.flops import flops_of
from bench.execute.peak import ensure_peak
from bench.measure.environment import capture_environment
from bench.plan.strategies import make_plan
from bench.records.kinds import OverheadRecord
from bench.records.store import file_stamp, write_json_new

from .step import LOOPS, measure, step_spec

DEFAULT_OUT = Path("runs-overhead")
SPREAD = 0.05   # --spread: the widest spread of round ratios that needs no further round


def overhead_record(spec: dict, results: dict[str, list[dict]], settings: dict) -> dict:
    """The record (``bench.records.kinds.OverheadRecord``) of one combination's rounds."""
    loops, environment = {}, None
    for loop in LOOPS:
        ok = [r for r in results[loop] if "error" not in r]
        steps = [t for r in ok for t in r["steps_ms"]]
        loops[loop] = {"rounds": len(results[loop]), "errors": [r["error"] for r in results[loop] if "error" in r],
                       "median_ms": float(np.median(steps)) if steps else None,
                       "round_medians_ms": [r["stats"]["median_ms"] for r in ok],
                       "round_steps_ms": [r["steps_ms"] for r in ok],
                       "compile_ms": [r["compile_ms"] for r in ok], "n": len(steps),
                       "memory": [r["memory"] for r in ok if "memory" in r],
                       "contended": any(r["contention"].get("busy") for r in ok)}
        environment = ok[0]["environment"] if ok else environment
    if environment is None:  # every round refused or failed: the machine still, from the parent
        environment = capture_environment({}, settings=settings)
    extra = {}
    ratios = round_ratios(results)
    if ratios:
        extra["round_ratios"] = ratios
        extra["ratio"] = ratio_of(extra)
    return OverheadRecord.new(spec, loops, settings, environment, **extra).to_json()


def ratio_of(rec: dict) -> float | None:
    """Harness/native of an overhead record: the median of its rounds' ratios (each round's two
    loops ran back to back or, interleaved, in one process); records without rounds keep theirs."""
    rounds = rec.get("round_ratios")
    return float(np.median(rounds)) if rounds else rec.get("ratio")


def round_ratios(results: dict[str, list[dict]]) -> list[float]:
    """Harness/native of each round whose two loops both measured (the round's medians of steady steps)."""
    return [h["stats"]["median_ms"] / n["stats"]["median_ms"] for n, h in zip(results["native"], results["harness"])
            if "error" not in n and "error" not in h]


def needs_round(ratios: list[float], done: int, args) -> bool:
    """Another round? Until ``--rounds``; then, up to ``--max-rounds``, while the rounds' ratios spread
    wider than ``--spread`` (max - min; a round that failed gives no ratio and counts as done)."""
    if done < args.rounds:
        return True
    most = max(getattr(args, "max_rounds", None) or args.rounds, args.rounds)
    return done < most and len(ratios) >= 2 and max(ratios) - min(ratios) > getattr(args, "spread", SPREAD)


def run_combination(backend: str, model: str, size: int, strategy: str, args, precision: str = "fp32") -> dict:
    settings = dict(args.set)
    design = getattr(args, "design", "processes")
    results: dict[str, list[dict]] = {loop: [] for loop in LOOPS}
    i = 0
    while needs_round(round_ratios(results), i, args):
        order = LOOPS if i % 2 == 0 else LOOPS[::-1]
        if design == "interleaved":
            got = measure(step_spec(backend, model, size, strategy, "+".join(order), args, precision), settings,
                          args.timeout)
            for loop in LOOPS:
                results[loop].append(got["loops"][loop] if "loops" in got else got)
        else:
            for loop in order:
                results[loop].append(measure(step_spec(backend, model, size, strategy, loop, args, precision),
                                             settings, args.timeout))
        i += 1
    spec = {k: v for k, v in step_spec(backend, model, size, strategy, "", args, precision).items() if k != "loop"}
    spec.update(rounds=i, design=design)
    if i > args.rounds:  # how the rounds beyond --rounds came about
        spec.update(min_rounds=args.rounds, spread=getattr(args, "spread", SPREAD))
    rec = overhead_record(spec, results, settings)
    rec["flops"] = spec_flops(spec)
    return rec


def spec_flops(spec: dict) -> dict:
    """FLOPs of one step of a step spec (``bench.measure.flops``)."""
    return flops_of(spec["model"], spec["image_size"], "imagenet", make_plan(spec["strategy"]), spec["batch_size"],
                    spec["classes"], default_cache_dir())


def measure_overhead(args) -> list[dict]:
    """Every (backend, model, size, strategy) of ``args``, one record each, written to ``args.out``."""
    records = []
    ensure_peak()  # before any timing, alone: every record's environment carries it
    for backend, model, size, strategy, precision in itertools.product(args.backend, args.model, args.image_size,
                                                                       args.strategy, args.precision):
        print(f"{backend} {model} {size}px {strategy} {precision}: ", end="", flush=True)
        rec = run_combination(backend, model, size, strategy, args, precision)
        write_json_new(Path(args.out) / f"{file_stamp(rec['created'])}_overhead_{backend}_{model}_{size}px_{strategy}"
                                        f"_{precision}_{os.getpid()}.json", rec)
        print(f"{rec.get('ratio', float('nan')):.3f}", flush=True)
        records.append(rec)
    return records
