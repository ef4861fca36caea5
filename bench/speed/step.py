"""One timed train-step measurement in its own process: what ``bench overhead`` and ``bench tune`` share.

The parent (``measure``) starts ``bench _step SPEC`` under the machine's timing lock
with the backend's child environment; the child (``time_loops``) builds the loop(s)
the spec names, times the compile step, the warm-up and the steady steps apart, and
writes the times, the environment and the contention probe as JSON. ``interleaved``
specs name two loops (``native+harness``) that alternate step by step in one process.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from backends.settings import child_env
from bench.execute.child import run_bench_child
from bench.execute.environments import BackendRef, check
from bench.plan.config import precision_of
from bench.measure.timing import machine_lock

LOOPS = ("native", "harness")


def framework_name(spec: dict) -> str:
    """The backend a spec's ``backend`` names: ``torch`` for ``torch`` and for ``torch@2.12.1`` (a release
    in its own environment: the label stays in the spec, so its records never pool with another's)."""
    return BackendRef.parse(spec["backend"]).name


# What the reference loop is (a spec field, so records of an older reference never pool with newer ones):
# each framework's own idiom, sharing no code with the harness (no plan application, no optimizer set-up),
# computing the network and the update the harness computes. Records of "independent" built MindCV's
# ResNets as MindCV pools their stem, padding (0, 1) where every other framework pads (1, 1); records of
# "independent, same network" gave MindSpore's ungrouped optimizer the weight decay, which it applies
# to no tensor named gamma or beta (BatchNorm), where the configuration decays every tensor.
REFERENCE = "independent, same network and update"


def step_spec(backend: str, model: str, size: int, strategy: str, loop: str, args, precision: str = "fp32") -> dict:
    """One measurement: both loops train with the optimizer of the architecture's own recipe."""
    from architectures import get_spec
    return {"backend": backend, "model": model, "image_size": size, "strategy": strategy, "loop": loop,
            "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "classes": 5,
            "lr": 0.01, "optimizer": get_spec(model).recipe.optimizer, "reference": REFERENCE, "mode": "graph",
            "device": "cpu", "precision": precision}


# --- the child: the loops, timed ----------------------------------------------------------

def _build_loop(spec: dict):
    from backends.base import OptimConfig
    from backends.registry import get_backend
    from bench.plan.strategies import make_plan

    backend = get_backend(framework_name(spec))
    optim = OptimConfig(spec.get("optimizer", "sgd"), spec["lr"], 0.9, 1e-4)
    classes, size, batch = spec["classes"], spec["image_size"], spec["batch_size"]
    if spec["loop"] == "native":
        return backend, backend.native_step(spec["model"], classes, image_size=size, batch=batch,
                                            strategy=spec["strategy"], optim=optim, mode=spec["mode"],
                                            device=spec["device"], precision=precision_of(spec))
    model = backend.create_model(spec["model"], classes, image_size=size, mode=spec["mode"], device=spec["device"])
    model.configure(make_plan(spec["strategy"]), optim, precision=precision_of(spec))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (batch, 3, size, size)).astype(np.float32)
    y = (np.arange(batch) % classes).astype(np.int32)
    return backend, lambda: model.train_step(x, y)


def _timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1e3


def time_loops(spec: dict) -> dict:
    """Build the spec's loop (``interleaved``: both, in the order given) and time their steps."""
    from backends.settings import effective_settings
    from bench.execute.peak import cached_peak
    from bench.measure.environment import capture_environment
    from backends.registry import get_backend
    from bench.measure.timing import ContentionProbe, current_rss_mb, peak_rss_mb, summarize_ms

    loops = spec["loop"].split("+")
    base_rss = current_rss_mb()  # Python, NumPy and the suite
    get_backend(framework_name(spec))  # imports the framework, idle
    import_rss = current_rss_mb()
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
    env = capture_environment(backend.versions(), backend.runtime_settings(), effective_settings(framework_name(spec)),
                              peak=cached_peak())
    contention = probe.stop()
    # Memory is the process's (with ``interleaved``, both loops'): its peak resident set, which holds the
    # interpreter and the framework's runtime too; base and import say how much of it was there before a step.
    memory = {"peak_rss_mb": peak_rss_mb(), "base_rss_mb": base_rss, "import_rss_mb": import_rss,
              "device_peak_mb": backend.peak_device_memory_mb(spec["device"])}
    results = {loop: {"compile_ms": compile_ms[loop], "steps_ms": times[loop], "stats": summarize_ms(times[loop]),
                      "contention": contention, "environment": env, "memory": memory} for loop in loops}
    return results[loops[0]] if len(loops) == 1 else {"loops": results}


# --- the parent: one process at a time ----------------------------------------------------

def measure(spec: dict, settings: dict[str, str], timeout: float, child: str = "_step") -> dict:
    """Run one ``child`` (``_step``, or ``_profile``) for ``spec`` under the machine lock; its result
    or {"error": ...}."""
    with tempfile.TemporaryDirectory(prefix="bench-step-") as tmp, machine_lock():
        result, stderr = Path(tmp) / "result.json", Path(tmp) / "stderr.txt"
        with open(stderr, "w") as err:
            code = run_bench_child([child, json.dumps(spec), "--result-file", str(result)],
                                   child_env(framework_name(spec), settings), timeout, err,
                                   python=check(BackendRef.parse(spec["backend"])))
        if code is None:
            return {"error": f"timed out after {timeout:g} s"}
        if code != 0 or not result.exists():
            return {"error": f"exit {code}: {stderr.read_text(errors='replace').strip().splitlines()[-1:] or ''}"}
        return json.loads(result.read_text())
