"""The protocol checks, run on every installed backend with the same expectations
(identical trainable counts on every backend prove the strategies mean the same)."""
import pytest

from backends.registry import get_backend

from . import protocol_checks as pc
from .installed import BACKENDS, SUFFIX

ARCH = "resnet18"


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param, SUFFIX[request.param], get_backend(request.param)


def test_head_replacement_with_checkpoint_filtering(backend, tmp_path):
    name, suffix, b = backend
    pc.check_head_replacement_drops_old_head(b, name, ARCH, tmp_path, suffix)


def test_replace_head(backend):
    name, _, b = backend
    pc.check_replace_head(b, name, ARCH)


def test_trainable_counts(backend):
    name, _, b = backend
    counts = pc.check_trainable_counts(b, name, ARCH)
    assert counts == {"total": 11_178_051, "trainable": 512 * 3 + 3}  # ResNet-18, 3 classes, every backend


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
