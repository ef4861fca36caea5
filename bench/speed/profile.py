"""``bench profile``: where a framework's train step spends its time, by its own profiler.

For each (backend, model, size), the framework's own reference loop (``Backend.native_step``,
as ``bench overhead`` times it) is compiled, warmed up, then run ``--steps`` times under the
framework's profiler (``torch.profiler``, ``mxnet.profiler`` with aggregate statistics,
``mindspore.Profiler``), in its own process under the timing lock. The record keeps every
operator kind's milliseconds; the table shows the top ones with their share of the
profiled operator time, and how much of the wall time the profiler attributed.
"""
from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

from bench.plan.config import precision_of
from bench.records.kinds import ProfileRecord
from bench.records.store import file_stamp, write_json_new

from .step import framework_name, measure, step_spec

DEFAULT_OUT = Path("runs-profile")


def profile_loop(spec: dict) -> dict:
    """In the child: the native loop, compiled and warmed up, then profiled."""
    from backends.base import OptimConfig
    from backends.registry import get_backend
    backend = get_backend(framework_name(spec))
    step = backend.native_step(spec["model"], spec["classes"], image_size=spec["image_size"],
                               batch=spec["batch_size"], strategy=spec["strategy"],
                               optim=OptimConfig(spec.get("optimizer", "sgd"), spec["lr"], 0.9, 1e-4), mode=spec["mode"],
                               device=spec["device"], precision=precision_of(spec))
    for _ in range(1 + spec["warmup"]):  # the compile step, then the warm-up
        step()
    from bench.measure.timing import ContentionProbe
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        probe, t0 = ContentionProbe().start(), time.perf_counter()
        ops = backend.profile(step, spec["steps"], scratch)
        wall_ms = (time.perf_counter() - t0) * 1e3
        contention = probe.stop()
    return {"ops_ms": ops, "wall_ms": wall_ms, "versions": backend.versions(), "contention": contention}


def measure_profiles(args) -> list[dict]:
    records = []
    for backend, model, size, precision in itertools.product(args.backend, args.model, args.image_size,
                                                             args.precision):
        spec = step_spec(backend, model, size, args.strategy, "native", args, precision)
        print(f"{backend} {model} {size}px {precision}: ", end="", flush=True)
        got = measure(spec, dict(args.set), args.timeout, child="_profile")
        rec = ProfileRecord.new(spec, dict(args.set), dict(got)).to_json()
        write_json_new(Path(args.out) / f"{file_stamp(rec['created'])}_profile_{backend}_{model}_{size}px_{precision}.json", rec)
        print(got.get("error") or f"{sum(got['ops_ms'].values()):.0f} ms of operators in {got['wall_ms']:.0f} ms",
              flush=True)
        records.append(rec)
    return records
