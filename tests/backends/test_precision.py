"""Mixed precision (--precision bf16|fp16) on every backend: it trains, or it says clearly why not.

What each framework supports depends on its build and the CPU (measured: MXNet 1.9.1's
oneDNN has no bf16 primitives without AVX-512; MindSpore 2.9's CPU max-pool has no bf16
kernel), so a test accepts either outcome, and checks that the outcome is honest: a run
that trains computes in the reduced precision (its record says which ops did) and
matches fp32 logits within the precision's tolerance; a refusal names the framework, its
version, the device and the precision.
"""
import numpy as np
import pytest

from backends.base import OptimConfig
from backends.registry import get_backend
from bench.core.errors import BackendUnavailable
from bench.plan.strategies import make_plan

from .installed import BACKENDS
from .test_architectures import random_canonical

# bf16 keeps 8 significant bits (relative rounding 2^-8 per operation), fp16 11: over ResNet-18's
# 20 layers the logits stay within a few percent of fp32 (measured: torch bf16 ~1-2%)
TOLERANCE = {"bf16": 0.05, "fp16": 0.01}
# one update's direction against fp32's, over every trained tensor (measured: bf16 0.91 on MXNet and
# PyTorch, fp16 0.985-0.989 on MindSpore and PyTorch); a mis-scaled update keeps its direction: the
# size check catches it
UPDATE_COSINE = {"bf16": 0.85, "fp16": 0.95}
FRAMEWORK = {"torch": "PyTorch", "mxnet": "MXNet", "mindspore": "MindSpore", "jax": "JAX"}
REDUCED = {"bf16": "bfloat16", "fp16": "float16"}


def _batch(size=32, n=4, classes=5):
    x = np.random.default_rng(0).normal(0, 1, (n, 3, size, size)).astype(np.float32)
    return x, (np.arange(n) % classes).astype(np.int32)


def _configured(name, precision, weights=None):
    model = get_backend(name).create_model("resnet18", 5, image_size=32, seed=0)
    if weights:
        model.load_weights(str(weights), new_head=False)
    model.configure(make_plan("full"), OptimConfig("sgd", 0.01, 0.9, 1e-4), precision=precision)
    return model


def _trains_or_refuses(name, precision, weights=None):
    """The model after two steps, or None when the framework refused with the one clear error."""
    try:
        model = _configured(name, precision, weights)
        x, y = _batch()
        losses = [model.train_step(x, y)[0] for _ in range(2)]
    except BackendUnavailable as e:
        message = str(e)
        assert f"--precision {precision}" in message and FRAMEWORK.get(name, name) in message
        assert "cannot train in" in message
        return None
    assert all(np.isfinite(losses)), losses
    return model


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", BACKENDS)
def test_reduced_precision_trains_in_it_or_is_refused_by_name(name, precision):
    model = _trains_or_refuses(name, precision)
    if model is None:
        return
    report = model.precision_report()
    assert report["requested"] == precision and report["master_weights"] == "float32"
    if report["ops"]:  # where the framework reports per-op dtypes, some ran reduced
        assert REDUCED[precision] in report["ops"], report["ops"]
    assert all(v.dtype == np.float32 for v in model.named_parameters().values())  # fp32 master weights
    assert (report["loss_scaling"] is not None) == (precision == "fp16")


@pytest.mark.parametrize("name", BACKENDS)
def test_fp32_reports_fp32(name):
    model = _configured(name, "fp32")
    assert model.precision_report()["requested"] == "fp32"
    assert model.precision_report()["loss_scaling"] is None


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", BACKENDS)
def test_reduced_precision_logits_match_fp32_across_backends(name, precision, tmp_path):
    """The same canonical weights: a backend's reduced-precision logits against the fp32 logits of
    every installed backend (which agree with each other to 1e-4), within TOLERANCE of their scale."""
    path = tmp_path / "w.npz"
    random_canonical(path, "resnet18", num_classes=5, size=32)
    try:
        low = _configured(name, precision, path)
        x, _ = _batch(n=8)
        got = low.predict(x)
    except BackendUnavailable:
        pytest.skip(f"{name} does not run {precision} here (refusal tested above)")
    for ref_name in BACKENDS:
        ref = get_backend(ref_name).create_model("resnet18", 5, image_size=32)
        ref.load_weights(str(path), new_head=False)
        want = ref.predict(x)
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= TOLERANCE[precision] * scale, (ref_name, np.abs(got - want).max(), scale)
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", BACKENDS)
def test_a_reduced_precision_step_moves_the_weights_as_fp32_does(name, precision, tmp_path):
    """One update from the same weights: the trained tensors move as fp32's do, in size and
    direction (all of them together: bf16 rounding alone turns a single BatchNorm scale's update by
    up to ~25 degrees). A loss scale left in the gradients (fp16: a 1024x update) or divided out
    twice fails here, whatever the logits say; so do parameter names that differ between precisions.
    A dynamic loss scaler (torch's GradScaler) may skip its first steps on overflow, as documented:
    a skipped step changes no weight and no optimizer state, so the step is taken again."""
    path = tmp_path / "w.npz"
    random_canonical(path, "resnet18", num_classes=5, size=32)
    x, y = _batch(n=8)
    deltas = {}
    for p in ("fp32", precision):
        try:
            model = _configured(name, p, path)
            names = model.trainable_names()
            before = model.named_parameters()
            for _ in range(20 if (model.precision_report()["loss_scaling"] or "").startswith("dynamic") else 1):
                model.train_step(x, y)
                after = model.named_parameters()
                if any(np.any(after[k] != before[k]) for k in names):
                    break
        except BackendUnavailable:
            pytest.skip(f"{name} does not run {precision} here (refusal tested above)")
        deltas[p] = np.concatenate([(after[k] - before[k]).ravel() for k in sorted(names)])
        assert p == "fp32" or sorted(names) == sorted(trained), "the trained parameters' names differ"
        trained = names
    want, got = deltas["fp32"], deltas[precision]
    ratio = np.linalg.norm(got) / np.linalg.norm(want)
    cosine = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert 0.8 < ratio < 1.25 and cosine > UPDATE_COSINE[precision], (ratio, cosine)
