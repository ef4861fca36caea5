"""The recipe vocabulary: each element's one definition, its validation, and hashes kept stable."""
import importlib.util
import math

import numpy as np
import pytest

from bench.core.errors import ConfigError
from bench.plan.config import RunConfig
from bench.plan.recipe import ELEMENTS, LrSchedule, decays, recipe_label, smoothed_targets
from bench.plan.strategies import make_plan


def _mindcv_dynamic_lr():
    """MindCV's own per-step lr functions, loaded from their file (it imports only math and bisect)."""
    found = importlib.util.find_spec("mindcv")
    if found is None:
        pytest.skip("needs the mindspore extra (mindcv)")
    path = next(iter(found.submodule_search_locations)) + "/scheduler/dynamic_lr.py"
    spec = importlib.util.spec_from_file_location("mindcv_dynamic_lr", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warmup_then_cosine_is_mindcvs_per_step_list():
    """MindCV's create_scheduler('cosine_decay', warmup_epochs=W, decay_epochs=E-W) per step."""
    dyn = _mindcv_dynamic_lr()
    spe, epochs, warm, lr, low, f = 7, 6, 2, 0.002, 1e-5, 0.1
    theirs = (dyn.linear_refined_lr(f, 1.0, warm, lr=lr, steps_per_epoch=spe, epochs=warm)
              + dyn.cosine_decay_refined_lr(epochs - warm, low, eta_max=lr, steps_per_epoch=spe, epochs=epochs - warm))
    config = RunConfig(epochs=epochs, lr=lr, schedule="cosine", lr_warmup_epochs=warm, lr_warmup_factor=f, min_lr=low)
    ours = LrSchedule.of(config, spe).values()
    assert len(ours) == len(theirs) == spe * epochs
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_step_schedule_counts_milestones_from_the_start():
    s = LrSchedule.of(RunConfig(epochs=5, lr=0.1, schedule="step", milestones=(2, 4), lr_gamma=0.5), 3)
    assert [round(v, 6) for v in s.values()] == [0.1] * 6 + [0.05] * 6 + [0.025] * 3


def test_constant_is_the_default_and_hashes_stay():
    config = RunConfig()
    assert LrSchedule.of(config, 5).is_constant
    before = RunConfig(**{k: v for k, v in config.to_json().items() if k not in ELEMENTS})
    assert before.config_hash() == config.config_hash()
    assert config.replace(label_smoothing=0.1).config_hash() != config.config_hash()
    assert config.replace(schedule="cosine").config_hash() != config.config_hash()


def test_a_recipe_has_a_name():
    assert recipe_label(RunConfig().to_json()) == "constant"
    modern = RunConfig(schedule="cosine", lr_warmup_epochs=1, label_smoothing=0.1, rand_augment="randaug-m7-mstd0.5",
                       decay_filter="no-bias-bn", nesterov=True)
    assert recipe_label(modern.to_json()) == ("cosine after 1-epoch warm-up, nesterov, smoothing 0.1, "
                                              "no decay on bias/BN, randaug-m7-mstd0.5")


def test_smoothing_is_over_k_classes_and_decay_filter_by_shape():
    t = smoothed_targets([0, 2], 4, 0.1)
    assert np.allclose(t.sum(1), 1) and math.isclose(t[0, 0], 0.925) and math.isclose(t[0, 1], 0.025)
    assert decays("all", (8,)) and decays("no-bias-bn", (8, 3, 3, 3)) and not decays("no-bias-bn", (8,))


def test_strategies_compose():
    plan = make_plan("freeze-1+layerwise")
    assert plan.frozen == ("stem",) and plan.lr_mult["head"] == 1.2 and plan.lr_mult["stage4"] == 1.15
    with pytest.raises(ConfigError, match="scratch does not compose"):
        make_plan("full+scratch")


@pytest.mark.parametrize("fields,message", [
    (dict(schedule="warm"), "unknown schedule 'warm' \\(--schedule\\); valid: constant, step, cosine"),
    (dict(epochs=3, lr_warmup_epochs=3), "--lr-warmup-epochs 3 is not shorter than the run \\(3 epochs\\)"),
    (dict(epochs=2, shots=5, classes=("a", "b"), batch_size=5, lr_warmup_steps=4),
     "--lr-warmup-steps 4 is not shorter than the run \\(4 steps"),
    (dict(lr_warmup_epochs=1, lr_warmup_steps=2), "choose one"),
    (dict(label_smoothing=-0.1), "--label-smoothing must be a number in \\[0, 1\\)"),
    (dict(label_smoothing=1.0), "--label-smoothing must be a number in \\[0, 1\\)"),
    (dict(schedule="step", epochs=5, milestones=(3, 2)), "--milestones 3,2: expected increasing whole epochs"),
    (dict(schedule="step", epochs=5, milestones=(5,)), "each in 1..4"),
    (dict(schedule="step"), "--schedule step needs --milestones"),
    (dict(milestones=(1,)), "--milestones is for --schedule step"),
    (dict(schedule="cosine", lr=0.01, min_lr=0.1), "--min-lr 0.1 is above --lr 0.01"),
    (dict(nesterov=True, optimizer="adam"), "--nesterov needs momentum"),
    (dict(nesterov=True, momentum=0.0), "--nesterov needs momentum"),
    (dict(decay_filter="bn"), "unknown decay_filter 'bn' \\(--decay-filter\\)"),
])
def test_bad_recipe_is_refused_naming_the_option(fields, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**fields)
