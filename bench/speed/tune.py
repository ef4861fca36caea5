"""``bench tune``: one backend's harness train step under each runtime setting.

Each candidate setting is an environment variable (the frameworks read most knobs
from the environment; the suite's own ``BENCH_*`` knobs cover the few set by
API: MindSpore's ``runtime_num_threads`` and ``jit_level``, torch's thread count,
channels-last and ``torch.compile``). One knob varies at a time from the
backend's defaults (``backends.registry.REGISTRY``, whose ``settings`` list the
values tried), each measurement in its own process, one at a time; the fastest
goes into the defaults by hand, with the table in docs/speed.md ("Fair speed")
generated from the record this writes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.registry import backend_info
from bench.execute.environments import BackendRef
from bench.execute.peak import ensure_peak
from bench.records.kinds import TuneRecord
from bench.records.store import file_stamp, write_json_new
from bench.measure.environment import cpu_flags
from bench.plan.config import PRECISIONS

from .step import measure, step_spec

DEFAULT_OUT = Path("runs-tune")


PRECISION = "precision"  # a knob of the step itself, not of the environment: the reduced precisions


def candidates(backend: str, knobs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The settings to try: ``--knob`` ones, else every value the registry lists for the backend,
    then the reduced precisions (``precision=bf16``, ``precision=fp16``)."""
    if knobs:
        return list(knobs)
    return ([(name, value) for name, values in backend_info(BackendRef.parse(backend).name).settings.items()
             for value in values]
            + [(PRECISION, p) for p in PRECISIONS if p != "fp32"])


def tune_backend(backend: str, args) -> dict:
    """Every setting measured in ``--rounds`` processes per model and size, settings taken
    round-robin (drift hits all alike); a cell is the median of its processes' medians."""
    defaults = backend_info(BackendRef.parse(backend).name).default_settings(cpu_flags()) | dict(args.set)
    settings = [("(defaults)", "")] + candidates(backend, args.knob)
    rows = [{"knob": name, "value": value, "ms": {}, "rounds_ms": {}, "compile_ms": {}, "errors": {}, "busy": False}
            for name, value in settings]
    environment = None  # the machine, commit and settings as the first measured step reports them
    for _ in range(args.rounds):
        for i, (name, value) in enumerate(settings):
            env = dict(args.set) | ({} if name in ("(defaults)", PRECISION) else {name: value})
            precision = value if name == PRECISION else "fp32"
            for model in args.model:
                for size in args.image_size:
                    key = f"{model} {size}px"
                    result = measure(step_spec(backend, model, size, args.strategy, "harness", args, precision), env,
                                     args.timeout)
                    if "error" in result:
                        rows[i]["errors"][key] = result["error"]
                        continue
                    rows[i]["rounds_ms"].setdefault(key, []).append(result["stats"]["median_ms"])
                    rows[i]["compile_ms"].setdefault(key, []).append(result["compile_ms"])
                    rows[i]["busy"] |= bool(result["contention"].get("busy"))
                    environment = result.get("environment") or environment
            print(f"  {name}={value}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in rows[i]["rounds_ms"].items()),
                  flush=True)
    for row in rows:
        row["ms"] = {key: float(np.median(medians)) for key, medians in row["rounds_ms"].items()}
    return TuneRecord.new(backend, defaults, args.strategy, args.batch_size, args.rounds, rows, ensure_peak(),
                          environment).to_json()


def measure_tune(args) -> list[dict]:
    """One tune record per backend of ``args``, written to ``args.out``."""
    records = []
    ensure_peak()  # alone, before any timing
    for backend in args.backend:
        print(f"{backend}:", flush=True)
        rec = tune_backend(backend, args)
        write_json_new(Path(args.out) / f"{file_stamp(rec['created'])}_tune_{backend}.json", rec)
        records.append(rec)
    return records
