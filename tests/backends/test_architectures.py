"""Every architecture in the registry, on every installed backend: no test code per architecture.

* canonical names and shapes are identical on every backend, and every parameter
  belongs to a stage of the spec;
* the same canonical weights give the same logits on every backend (eval mode,
  within 1e-4 relative to the largest logit), with BatchNorm statistics and affine
  terms randomised so that a mix-up of mean and variance, or of scale and shift,
  cannot pass unnoticed;
* each strategy trains the same canonical parameters at the same lr and weight
  decay on every backend, and one train step gives a finite loss.
"""
import numpy as np
import pytest

from architectures import get_spec
from backends.base import OptimConfig
from backends.registry import get_backend
from bench.plan.strategies import ALL_STRATEGIES, make_plan
from bench.weights.canonical import read_canonical, write_canonical

from .installed import ARCHITECTURES, BACKENDS, BUILDS, building

RTOL = 1e-4
pytestmark = pytest.mark.skipif(len(BACKENDS) < 2, reason="needs at least two backends installed")


def random_canonical(path, arch, num_classes=10, size=64, stem="imagenet", seed=0):
    """Canonical weights with non-trivial BatchNorm everywhere, written by the first backend."""
    get_backend(building(arch)[0]).create_model(arch, num_classes, image_size=size, stem=stem,
                                                seed=seed).save_weights(str(path))
    _, state = read_canonical(path)
    rng = np.random.default_rng(seed)
    for name, v in state.items():
        if name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 2.0, v.shape)
        elif name.endswith("running_mean"):
            state[name] = rng.normal(0, 0.1, v.shape)
        elif v.ndim == 1 and name.endswith("weight"):  # BatchNorm scale
            state[name] = rng.uniform(0.5, 1.5, v.shape)
        elif v.ndim == 1:                               # BatchNorm shift, biases
            state[name] = rng.normal(0, 0.1, v.shape)
    write_canonical(path, arch, state, {"test": "random"})


def max_rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(a).max())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_canonical_names_shapes_and_stages_agree(arch, tmp_path):
    names, backends = {}, building(arch)
    for backend in backends:
        model = get_backend(backend).create_model(arch, 10, image_size=64)
        for name in model.named_parameters():
            model.table.stage_of(name)  # raises for a parameter outside every stage
        path = tmp_path / f"{backend}.npz"
        model.save_weights(str(path))
        meta, state = read_canonical(path)
        assert meta["arch"] == arch
        names[backend] = {n: v.shape for n, v in state.items()}
    first = names[backends[0]]
    for backend in backends[1:]:
        assert names[backend] == first, (backend, sorted(set(names[backend]) ^ set(first))[:5])
    head = [n for n in first if get_spec(arch).stage_of_canonical(n) == "head"]
    assert sorted(s[0] for n, s in first.items() if n in head and len(s) == 2) == [10]


PARITY = [(a, 64, "imagenet") for a in ARCHITECTURES] + [("resnet18", 224, "imagenet"), ("resnet18", 32, "cifar")]


@pytest.mark.parametrize("arch,size,stem", PARITY, ids=[f"{a}-{s}px-{t}" for a, s, t in PARITY])
def test_same_canonical_weights_give_the_same_logits(arch, size, stem, tmp_path):
    path = tmp_path / f"{arch}.npz"
    random_canonical(path, arch, size=size, stem=stem)
    x = np.random.default_rng(1).normal(0, 1, (2, 3, size, size)).astype(np.float32)
    logits, backends = {}, building(arch)
    for i, backend in enumerate(backends):
        model = get_backend(backend).create_model(arch, 10, image_size=size, stem=stem, seed=10 + i)
        report = model.load_weights(str(path))
        assert not report.dropped and not report.missing, (backend, report)
        logits[backend] = model.predict(x)
    ref = logits[backends[0]]
    assert np.abs(ref).max() > 0.1  # not a degenerate all-zero output
    for backend in backends[1:]:
        assert max_rel_diff(ref, logits[backend]) < RTOL, backend


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_strategies_mean_the_same_on_every_backend(arch):
    """Per strategy: the same canonical parameters train, at the same lr and weight decay."""
    backends = building(arch)
    for strategy in ALL_STRATEGIES:
        seen = {}
        for backend in backends:
            model = get_backend(backend).create_model(arch, 3, image_size=32)
            model.configure(make_plan(strategy), OptimConfig(lr=0.01, weight_decay=1e-4))
            rename = model.table.to_canonical
            lrs = {rename(n): lr for lr, names in model.param_groups().items() for n in names}
            wds = {rename(n): wd for wd, names in model.weight_decay_groups().items() for n in names}
            seen[backend] = (lrs, wds, model.param_counts())
        for backend in backends[1:]:
            assert seen[backend] == seen[backends[0]], (strategy, backend)


@pytest.mark.slow
@pytest.mark.parametrize("arch,backend", BUILDS, ids=[f"{a}-{b}" for a, b in BUILDS])
def test_one_train_step_is_finite(arch, backend):
    model = get_backend(backend).create_model(arch, 3, image_size=32)
    model.configure(make_plan("head-lr-x10"), OptimConfig(lr=0.01))
    x = np.random.default_rng(0).normal(0, 1, (4, 3, 32, 32)).astype(np.float32)
    loss, correct = model.train_step(x, np.array([0, 1, 2, 0], np.int32))
    assert np.isfinite(loss) and 0 <= correct <= 4
