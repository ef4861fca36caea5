"""Each backend's reference loop (``Backend.native_step``) shares no code with the harness, yet trains
what the harness trains: the same parameters at the same learning rates, for every strategy, read from
the framework after each side set them up in its own way. A reference that froze or multiplied
differently would time another training; one that shared the harness's plan application would hide
its cost from ``bench overhead``."""
import ast
import inspect

import pytest

from backends.base import OptimConfig
from backends.registry import get_backend
from bench.plan.strategies import make_plan

from .installed import BACKENDS

SIZE = 32
STRATEGIES = ("full", "linear-probe", "freeze-2", "layerwise")


def _harness_lrs(backend: str, arch: str, strategy: str, optim: OptimConfig) -> dict[str, float]:
    model = get_backend(backend).create_model(arch, 5, image_size=SIZE)
    model.configure(make_plan(strategy), optim)
    return {name: float(lr) for lr, names in model.param_groups().items() for name in names}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("arch", ("resnet18", "efficientnet_lite0"))
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reference_trains_what_the_harness_trains(backend, arch, strategy):
    optim = OptimConfig("sgd", 0.01, 0.9, 1e-4)
    step = get_backend(backend).native_step(arch, 5, image_size=SIZE, batch=2, strategy=strategy, optim=optim)
    reference = {name: pytest.approx(lr) for name, lr in step.lr_of.items()}
    assert _harness_lrs(backend, arch, strategy, optim) == reference


@pytest.mark.parametrize("decay_filter", ("all", "no-bias-bn"))
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reference_decays_what_the_harness_decays(backend, decay_filter):
    """The weight decay each trained parameter gets, read back from each side's optimizer. MindSpore's
    ungrouped optimizer decays no tensor named gamma or beta, so a reference built that way computed
    another update than the configuration's (and took 40 fewer decay ops a ResNet-18 step)."""
    optim = OptimConfig("sgd", 0.01, 0.9, 1e-4, decay_filter=decay_filter)
    step = get_backend(backend).native_step("resnet18", 5, image_size=SIZE, batch=2, strategy="layerwise", optim=optim)
    model = get_backend(backend).create_model("resnet18", 5, image_size=SIZE)
    model.configure(make_plan("layerwise"), optim)
    harness = {name: float(wd) for wd, names in model.weight_decay_groups().items() for name in names}
    assert harness == {name: pytest.approx(wd) for name, wd in step.wd_of.items()}
    assert {wd for wd in harness.values()} == ({1e-4} if decay_filter == "all" else {0.0, 1e-4})


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reference_steps_with_the_optimizer_the_configuration_names(backend):
    for name in ("sgd", "adam"):
        step = get_backend(backend).native_step("resnet18", 5, image_size=SIZE, batch=2, strategy="linear-probe",
                                                optim=OptimConfig(name, 0.01, 0.9, 1e-4))
        step()
        step()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reference_calls_nothing_of_the_harness(backend):
    """Its source calls none of the harness's plan, optimizer or model-set-up functions (module-level names:
    an attribute call such as ``torch.autocast`` is the framework's own)."""
    module = inspect.getmodule(type(get_backend(backend)))
    source = inspect.getsource(module.native_step)
    called = {node.func.id for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    harness = {"param_plan", "apply_plan", "translate", "make_trainer", "make_optimizer", "optimizer_groups",
               "configure", "amp_convert", "_set_context", "_context", "autocast"}
    assert not called & harness, called & harness


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reference_steps_in_mixed_precision_as_the_harness_does(backend):
    """bf16 where the framework trains in it (MindSpore 2.9 refuses, saying so): the converted network
    keeps BatchNorm's running statistics without a gradient (Gluon warned of a stale gradient, and the
    measuring child died, when the reference's AMP copy gave them one)."""
    import warnings

    from bench.core.errors import BenchError
    try:
        step = get_backend(backend).native_step("resnet18", 5, image_size=SIZE, batch=2, strategy="full",
                                                optim=OptimConfig("sgd", 0.01, 0.9, 1e-4), precision="bf16")
    except BenchError as e:
        pytest.skip(f"{backend} does not train in bf16 here: {str(e)[:120]}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step()
        step()
    assert not [w for w in caught if "has not been updated" in str(w.message)]
