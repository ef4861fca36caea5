"""Backends that live in an environment of their own (``bench env create jax``: JAX with NumPy 2 cannot
share the test run's NumPy 1.23.5) pass the same checks as the backends installed here: the protocol,
logit parity on every architecture from one canonical file, and every strategy training the same
canonical parameters at the same lr and weight decay. Each runs in that environment's interpreter
(``tests/backends/in_environment.py``) and is compared here with the backends of this environment.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backends.registry import REGISTRY, backend_info
from bench.execute.environments import BackendRef, describe, interpreter
from bench.plan.strategies import ALL_STRATEGIES, make_plan

from .installed import ARCHITECTURES, BACKENDS, building
from .test_architectures import PARITY, RTOL, max_rel_diff, random_canonical

ROOT = Path(__file__).resolve().parents[2]
# read at collection, before the per-test BENCH_ENV_ROOT (tests/conftest.py) hides the user's environments
OWN = {name: interpreter(name) for name in REGISTRY if name not in BACKENDS and describe(BackendRef(name))}
pytestmark = pytest.mark.skipif(not OWN, reason="no backend in an environment of its own here "
                                                "(python -m bench env create jax)")


def _environ() -> dict[str, str]:
    """A child in the backend's environment: its own packages first, no per-test BENCH_ENV_ROOT."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BENCH_ENV_ROOT")}


def run_in(backend: str, op: str, timeout: float = 900, **args):
    """``op`` of ``tests/backends/in_environment.py`` for ``backend``, in its environment's interpreter."""
    args["backend"] = backend
    done = subprocess.run([OWN[backend], "-m", "tests.backends.in_environment", op, json.dumps(args)], cwd=ROOT,
                          env=_environ(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# the backend test modules that need one backend only: run by the environment's own pytest
ONE_BACKEND = ("test_protocol.py", "test_reference_loops.py", "test_precision.py", "test_update_parity.py",
               "test_determinism.py", "test_jax.py")


@pytest.mark.parametrize("backend", sorted(OWN))
def test_the_backend_tests_pass_in_its_environment(backend, tmp_path):
    """The protocol, reference-loop, precision, update-parity and determinism tests every backend of
    this environment passes, run by pytest in the backend's environment (where it is the one backend),
    and the backend's own module where it has one (``test_jax.py``: hostile Flax checkpoints)."""
    done = subprocess.run([OWN[backend], "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                           "--basetemp", str(tmp_path / "t"), "-m", "not slow",
                           *[f"tests/backends/{m}" for m in ONE_BACKEND]],
                          cwd=ROOT, env=_environ(), capture_output=True, text=True, timeout=1800)
    tail = done.stdout.strip().splitlines()[-15:]
    assert done.returncode == 0, "\n".join(tail) + done.stderr[-2000:]
    assert " passed" in tail[-1] and "failed" not in tail[-1], tail[-1]


CLASSES, SIZE = 10, 64  # the strategy and step checks build each network as the logit checks do (PARITY)


@pytest.fixture(scope="module", params=sorted(OWN))
def there(request, tmp_path_factory):
    """The logit, strategy and finite-step checks, run by one child in the backend's environment: each
    network's initialisation compiles once there for all three (XLA compiles each for seconds).
    (backend, logit cases, [logit reports, strategies, fp32 steps, bf16 step])."""
    backend, tmp = request.param, tmp_path_factory.mktemp(f"own-{request.param}")
    cases = []
    for arch, size, stem in PARITY:
        if not building(arch):
            continue
        weights, x = tmp / f"{arch}-{size}-{stem}.npz", tmp / f"{arch}-{size}-{stem}-x.npy"
        random_canonical(weights, arch, size=size, stem=stem)
        np.save(x, np.random.default_rng(1).normal(0, 1, (2, 3, size, size)).astype(np.float32))
        cases.append({"arch": arch, "size": size, "stem": stem, "weights": str(weights), "input": str(x),
                      "out": str(tmp / f"{arch}-{size}-{stem}-{backend}.npy")})
    size = {"classes": CLASSES, "size": SIZE}
    calls = [["logits", {"cases": cases}],
             ["strategies", {"archs": _compared(backend)} | size],
             ["steps", {"archs": _built(backend), "precisions": ["fp32"]} | size],
             ["steps", {"archs": ["efficientnet_lite0"], "precisions": ["bf16"]} | size]]
    return backend, cases, run_in(backend, "several", calls=calls, timeout=1800)


def _built(backend: str) -> list[str]:
    return [a for a in ARCHITECTURES if backend_info(backend).builds(backend, a)]


def _compared(backend: str) -> list[str]:
    return [a for a in _built(backend) if building(a)]


@pytest.mark.slow
def test_same_canonical_weights_give_the_same_logits_across_environments(there):
    from backends.registry import get_backend
    backend, cases, (reports, *_) = there
    assert cases, "no backend of this environment builds an architecture to compare with"
    errors = {}
    for case, report in zip(cases, reports):
        assert not report["dropped"] and not report["missing"], (case["arch"], report)
        local = building(case["arch"])[0]
        model = get_backend(local).create_model(case["arch"], 10, image_size=case["size"], stem=case["stem"], seed=3)
        model.load_weights(case["weights"])
        want = model.predict(np.load(case["input"]))
        assert np.abs(want).max() > 0.1
        errors[f"{case['arch']} {case['size']}px {case['stem']} vs {local}"] = max_rel_diff(want, np.load(case["out"]))
    assert all(e < RTOL for e in errors.values()), errors


@pytest.mark.slow
def test_strategies_mean_the_same_across_environments(there):
    from backends.base import OptimConfig
    from backends.registry import get_backend
    backend, _, (_, strategies, *_) = there
    for arch in _compared(backend):
        for strategy in ALL_STRATEGIES:
            model = get_backend(building(arch)[0]).create_model(arch, CLASSES, image_size=SIZE)
            model.configure(make_plan(strategy), OptimConfig(lr=0.01, weight_decay=1e-4))
            rename = model.table.to_canonical
            lrs = {rename(n): lr for lr, names in model.param_groups().items() for n in names}
            wds = {rename(n): wd for wd, names in model.weight_decay_groups().items() for n in names}
            got = strategies[f"{arch} {strategy}"]
            assert (got["lr"], got["wd"], got["counts"]) == (lrs, wds, model.param_counts()), (arch, strategy)


@pytest.mark.slow
def test_every_architecture_trains_a_finite_step(there):
    """tests/backends/test_architectures.py's finite step, which skips in an environment of one backend; in
    bf16 too on EfficientNet-Lite0 ("same"-padded depthwise convolutions; ResNet-18's bf16 and fp16 are
    in test_precision.py, run above; each bf16 step compiles for seconds)."""
    backend, _, (*_, fp32, bf16) = there
    got = fp32 | bf16
    for key, step in got.items():
        assert np.isfinite(step["loss"]) and 0 <= step["correct"] <= 4, (key, step)
    for arch in _built(backend):
        assert "bfloat16" not in got[f"{arch} fp32"]["report"]["ops"], arch
    low = got["efficientnet_lite0 bf16"]["report"]["ops"]  # convolutions in bfloat16, the new head in float32
    assert low.get("bfloat16", {}).get("Conv") and low.get("float32", {}).get("Dense"), low


@pytest.mark.parametrize("model", ["resnet18", pytest.param("mobilenet_v3_small", marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", sorted(OWN))
def test_every_step_updates_as_the_numpy_reference_in_its_environment(backend, model, tmp_path, monkeypatch):
    """``bench parity``'s all-elements recipe (frozen stem, per-stage multipliers, Nesterov, warm-up into a
    cosine, label smoothing, no decay on biases and BatchNorm), its child in the backend's environment."""
    from bench.cli import main
    monkeypatch.setenv("BENCH_ENV_ROOT", str(Path(OWN[backend]).parents[2]))  # where OWN found it
    out = tmp_path / "parity.json"
    assert main(["parity", "--backend", backend, "--model", model, "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["backend"] == backend and len(result["steps"]) == 6
    for row in result["steps"]:  # the lr the framework applied is the schedule's, per stage; the stem frozen
        assert row["lr"].keys() == row["protocol_lr"].keys() and "stem" not in row["lr"]
        for stage, lr in row["lr"].items():
            assert lr == pytest.approx(row["protocol_lr"][stage], rel=1e-6), (row["step"], stage)
        assert row["running_stats"]["stem"]["error"] == 0.0
