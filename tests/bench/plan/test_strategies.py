import pytest

from architectures import STAGES, all_specs
from backends.registry import arch_view
from bench.core.errors import ConfigError
from bench.plan.strategies import ALL_STRATEGIES, MINDCV_LAYERWISE, make_plan


def test_linear_probe_freezes_whole_backbone():
    p = make_plan("linear-probe")
    assert set(p.frozen) == set(STAGES) - {"head"}
    assert p.pretrained


def test_freeze_n_freezes_first_n_in_order():
    assert make_plan("freeze-2").frozen == ("stem", "stage1")
    with pytest.raises(ConfigError, match="N must be"):
        make_plan("freeze-9")


def test_head_lr_and_layerwise_multipliers():
    p = make_plan("head-lr-x10")
    assert p.lr_mult["head"] == 10 and p.lr_mult["stage4"] == 1
    assert make_plan("head-lr-x1.2").lr_mult["head"] == pytest.approx(1.2)
    assert make_plan("layerwise").lr_mult == MINDCV_LAYERWISE
    d = make_plan("layerwise-0.5").lr_mult
    assert d["head"] == 1.0 and d["stage4"] == 0.5 and d["stem"] == pytest.approx(0.5 ** 5)


def test_scratch_is_not_pretrained():
    assert make_plan("scratch").pretrained is False


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ConfigError, match="linear-probe"):
        make_plan("unfreeze-everything")


def test_all_strategies_parse():
    for s in ALL_STRATEGIES:
        make_plan(s)


def test_arch_table_errors_and_stage_lookup():
    t = arch_view("resnet18", "mindspore")
    assert t.stage_of("layer3.1.conv2.weight") == "stage3"
    assert t.stage_of("classifier.bias") == "head"
    with pytest.raises(ConfigError, match="unknown model"):
        arch_view("vgg99", "mxnet")
    with pytest.raises(ConfigError, match="not available on backend 'mindspore'"):
        arch_view("resnet18_v2", "mindspore")
    for spec in all_specs():
        assert set(spec.stages) == set(STAGES), spec.name


def test_frozen_bn_statistics_cover_every_stage_but_freeze_no_weights():
    plan = make_plan("full", bn_stats_frozen=True)
    assert all(plan.bn_frozen(s) for s in STAGES) and not any(plan.is_frozen(s) for s in STAGES)
    assert plan.to_json()["bn_stats_frozen"] is True
    probe = make_plan("freeze-2")
    assert [probe.bn_frozen(s) for s in STAGES] == [True, True, False, False, False, False]


def test_experiment_overrides_per_strategy_and_scratch_keeps_its_bn():
    from bench.plan.config import RunConfig
    from bench.plan.experiments import get_experiment
    exp = get_experiment("imagenet-cifar")
    probe = exp.arm_config("mxnet", "finetune", "linear-probe")
    full = exp.arm_config("mxnet", "finetune", "full")
    scratch = exp.arm_config("mxnet", "scratch", "scratch", bn_stats="frozen")
    assert (probe.lr, full.lr, scratch.lr) == (1e-3, 1e-4, 1e-3)
    assert (full.bn_stats, scratch.bn_stats, scratch.pretrained) == ("frozen", "train", "none")
    assert exp.arm_config("mxnet", "finetune", "linear-probe", lr=0.05).lr == 0.05  # the CLI wins
    with pytest.raises(ConfigError, match="bn_stats"):
        RunConfig(bn_stats="sometimes")
