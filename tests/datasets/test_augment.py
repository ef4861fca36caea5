"""The seeds' augmentations in the shared pipeline: timm/MindCV semantics, deterministic per sample."""
import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.errors import ConfigError
from datasets.augment import OPS, RandAugment, color_jitter, random_erasing
from datasets.transforms import EvalTransform, TrainTransform


def _image(seed=0, size=48):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_the_op_list_is_mindcvs():
    found = importlib.util.find_spec("mindcv")
    if found is None:
        pytest.skip("needs the mindspore extra (mindcv)")
    source = Path(next(iter(found.submodule_search_locations))) / "data" / "auto_augment.py"
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_RAND_TRANSFORMS":
            assert tuple(ast.literal_eval(node.value)) == OPS
            return
    pytest.fail("MindCV's _RAND_TRANSFORMS not found")


def test_config_string_parses_as_timm_does():
    assert RandAugment.parse("randaug-m7-mstd0.5") == RandAugment(magnitude=7, num_ops=2, magnitude_std=0.5)
    assert RandAugment.parse("randaug-n3-m9-mstdinf").magnitude_std == float("inf")
    for bad, message in (("randaug-m11", "magnitude m must be in \\[0, 10\\]"), ("rand-m9", "expected 'randaug"),
                         ("randaug-n0", "n must be a whole number"), ("randaug-n2.5", "n must be a whole number"),
                         ("randaug-x1", "unknown part 'x1'")):
        with pytest.raises(ConfigError, match=message):
            RandAugment.parse(bad)


def test_rand_augment_is_deterministic_per_generator_and_applies_each_op_half_the_time():
    ra, img = RandAugment.parse("randaug-m7-mstd0.5"), _image()
    one = np.asarray(ra(img, np.random.default_rng(5), (124, 116, 104)))
    assert np.array_equal(one, np.asarray(ra(img, np.random.default_rng(5), (124, 116, 104))))
    unchanged = sum(np.array_equal(np.asarray(ra(img, np.random.default_rng(s), (0, 0, 0))), np.asarray(img))
                    for s in range(400))
    assert 0.15 < unchanged / 400 < 0.4  # both ops skipped with probability 1/4 (an op can also be a no-op)


@pytest.mark.parametrize("name", OPS)
def test_every_op_keeps_size_and_mode(name):
    from datasets.augment import APPLY
    out = APPLY[name](_image(), 7.0, np.random.default_rng(0), (124, 116, 104))
    assert out.size == (48, 48) and out.mode == "RGB"


def test_color_jitter_and_erasing():
    img = _image()
    assert np.array_equal(np.asarray(color_jitter(img, 0.0, np.random.default_rng(0))), np.asarray(img))
    assert not np.array_equal(np.asarray(color_jitter(img, 0.4, np.random.default_rng(0))), np.asarray(img))
    chw = np.ones((3, 32, 32), np.float32)
    erased = random_erasing(chw.copy(), np.random.default_rng(1))
    zero = (erased == 0).all(0)
    assert 0.02 * 1024 * 0.5 <= zero.sum() <= 0.33 * 1024 * 1.5 and (erased[:, zero] == 0).all()


def test_train_transform_is_the_same_pixels_for_the_same_sample():
    t = TrainTransform(32, (0.35, 1.0), True, color_jitter=0.4, rand_augment="randaug-m7-mstd0.5", re_prob=0.25)
    a = t(_image(3, 64), np.random.default_rng([0, 1, 7]))
    assert a.shape == (3, 32, 32) and np.array_equal(a, t(_image(3, 64), np.random.default_rng([0, 1, 7])))
    assert not np.array_equal(a, t(_image(3, 64), np.random.default_rng([0, 2, 7])))


def test_crop_pct_is_mindcvs_and_the_default_is_unchanged():
    assert EvalTransform(224, crop_pct=0.875).resize_to == 256 and EvalTransform(224).resize_to == 256
    assert EvalTransform(32).resize_to == 37 and EvalTransform(32, crop_pct=0.875).resize_to == 36
    assert EvalTransform(600, crop_pct=0.875).resize_to == 685
