"""FLOPs per training step: counted from the layers that run (bench.measure.flops)."""
import pytest

from bench.measure.flops import step_flops
from bench.measure.peak import best_measured, theoretical
from bench.plan.strategies import make_plan

LAYERS = [{"name": "a", "flops": 10, "params": ["a.weight"]}, {"name": "b", "flops": 20, "params": ["b.weight"]},
          {"name": "head", "flops": 1, "params": ["head.weight", "head.bias"]}]


def test_full_step_is_forward_plus_both_gradients_except_the_first_input_gradient():
    got = step_flops(LAYERS, lambda name: True, batch=2)
    assert got["forward"] == 2 * 31
    assert got["backward"] == 2 * (31 + 21)  # weight gradients everywhere, input gradients after layer a
    assert got["per_step"] == got["forward"] + got["backward"]


def test_a_linear_probe_never_runs_the_backbones_backward():
    got = step_flops(LAYERS, lambda name: name.startswith("head"), batch=1)
    assert got == got | {"forward": 31, "backward": 1, "per_step": 32}


@pytest.mark.parametrize("strategy", ["full", "linear-probe"])
def test_resnet18_matches_torch_flop_counter(strategy):
    """The suite's count equals torch.utils.flop_counter's for ResNet-18 (dense convolutions only:
    where the two can agree), full and linear probe."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from backends.base import OptimConfig
    from backends.registry import arch_view, get_backend
    backend = get_backend("torch")
    layers = backend.layers("resnet18", 64, num_classes=5)
    spec, plan = arch_view("resnet18", "torch").spec, make_plan(strategy)
    ours = step_flops(layers, lambda n: not plan.is_frozen(spec.stage_of_canonical(n)), batch=4)
    model = backend.create_model("resnet18", 5, image_size=64)
    model.configure(plan, OptimConfig("sgd", 0.01, 0.9, 0.0))
    x = torch.randn(4, 3, 64, 64)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model.net(x), torch.arange(4) % 5).backward()
    counted = sum(v for op, v in counter.get_flop_counts()["Global"].items()
                  if "convolution" in str(op) or "mm" in str(op) or "addmm" in str(op))
    assert ours["per_step"] == pytest.approx(counted, rel=1e-3)


def test_theoretical_peak_states_its_assumption_and_refuses_to_guess_bf16():
    got = theoretical({"avx2", "fma", "avx"}, cores=2, mhz=2000.0)
    assert got["fp32"]["gflops"] == 2 * 2.0 * 32 and "FMA" in got["fp32"]["assumption"]
    assert got["bf16"]["gflops"] is None and "no bf16" in got["bf16"]["why"]
    assert theoretical({"avx512f", "avx512_bf16"}, 2, 2000.0)["bf16"]["gflops"] == 2 * 2.0 * 64
    assert got["fp16"]["gflops"] is None and "no fp16" in got["fp16"]["why"]


def test_theoretical_avx512_width_depends_on_the_vendor():
    flags = {"avx512f", "fma", "avx", "avx512_fp16", "amx_bf16"}
    intel, amd = theoretical(flags, 2, 2000.0, "GenuineIntel"), theoretical(flags, 2, 2000.0, "AuthenticAMD")
    assert intel["fp32"]["flop_per_cycle"] == 64 and "Intel" in intel["fp32"]["assumption"]
    assert amd["fp32"]["flop_per_cycle"] == 32 and "Zen 4" in amd["fp32"]["assumption"]
    assert intel["fp16"]["flop_per_cycle"] == 128 and intel["bf16"]["flop_per_cycle"] == 1024


def test_best_measured_peak_picks_the_fastest_kernel_of_the_precision():
    peak = {"kernels": {"x": {"precision": "fp32", "gflops": 100, "library": "A"},
                        "y": {"precision": "fp32", "gflops": 150, "library": "B"},
                        "z": {"precision": "bf16", "gflops": 700, "library": "C"}}}
    assert best_measured(peak, "fp32") == {"kernel": "y", "library": "B", "gflops": 150}
    assert best_measured(peak, "fp16") is None and best_measured(None, "fp32") is None
