"""The protocol checks, run on every installed backend with the same expectations
(identical trainable counts on MXNet and MindSpore prove the strategies mean the same)."""
import importlib.util

import pytest

from backends.base import get_backend

from . import protocol_checks as pc

ARCH = "resnet18"
INSTALLED = [(name, suffix) for name, module, suffix in
             (("mxnet", "mxnet", ".params"), ("mindspore", "mindcv", ".ckpt"))
             if importlib.util.find_spec(module)]


@pytest.fixture(scope="module", params=INSTALLED, ids=[n for n, _ in INSTALLED])
def backend(request):
    name, suffix = request.param
    return name, suffix, get_backend(name)


def test_head_replacement_with_checkpoint_filtering(backend, tmp_path):
    name, suffix, b = backend
    pc.check_head_replacement_drops_old_head(b, name, ARCH, tmp_path, suffix)


def test_replace_head(backend):
    name, _, b = backend
    pc.check_replace_head(b, name, ARCH)


def test_trainable_counts(backend):
    name, _, b = backend
    counts = pc.check_trainable_counts(b, name, ARCH)
    assert counts == {"total": 11_178_051, "trainable": 512 * 3 + 3}  # ResNet-18, 3 classes, both zoos


def test_param_groups(backend):
    name, _, b = backend
    pc.check_param_groups(b, name, ARCH)


def test_weight_decay_reaches_every_parameter(backend):
    name, _, b = backend
    pc.check_weight_decay_reaches_every_parameter(b, ARCH)


def test_bn_stats_frozen_everywhere(backend):
    name, _, b = backend
    pc.check_bn_stats_frozen_everywhere(b, name, ARCH)


def test_train_step_reduces_loss(backend):
    pc.check_train_step_reduces_loss(backend[2], ARCH)


def test_frozen_stay_frozen(backend):
    name, _, b = backend
    pc.check_frozen_stay_frozen(b, name, ARCH)


def test_save_load_roundtrip(backend, tmp_path):
    _, suffix, b = backend
    pc.check_save_load_roundtrip(b, ARCH, tmp_path, suffix)
