"""Backend-neutral checks of the protocol; each backend's test module runs them."""
from __future__ import annotations

import numpy as np

from backends.base import OptimConfig
from backends.registry import arch_view
from bench.plan.strategies import make_plan

SIZE = 32


def batch(n=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 3, SIZE, SIZE)).astype(np.float32)
    y = (np.arange(n) % classes).astype(np.int32)
    for i, label in enumerate(y):  # a learnable signal: channel and strength by class
        x[i, label % 3] += 1.5 * (1 + label // 3)
    return x, y


def head_names(model, framework, arch):
    t = arch_view(arch, framework)
    return [n for n in model.named_parameters() if t.is_head(n)]


def check_head_replacement_drops_old_head(backend, framework, arch, tmp_path, suffix):
    src = backend.create_model(arch, 5, image_size=SIZE)
    path = str(tmp_path / f"src{suffix}")
    src.save_weights(path)
    dst = backend.create_model(arch, 3, image_size=SIZE, seed=1)
    report = dst.load_weights(path)
    heads = head_names(dst, framework, arch)
    assert sorted(d.split(" ")[0] for d in report.dropped if "head" in d) == sorted(heads)
    assert report.loaded >= len(dst.named_parameters()) - len(heads) - len(report.missing)
    s, d = src.named_parameters(), dst.named_parameters()
    body = [n for n in d if n not in heads]
    assert all(np.array_equal(s[n], d[n]) for n in body)
    assert d[heads[0]].shape[0] == 3 or d[heads[0]].shape[-1] == 3


def check_replace_head(backend, framework, arch):
    m = backend.create_model(arch, 5, image_size=SIZE)
    m.replace_head(7)
    assert m.predict(batch()[0]).shape == (8, 7)


def check_trainable_counts(backend, framework, arch):
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("linear-probe"), OptimConfig(lr=0.01))
    counts = m.param_counts()
    head = head_names(m, framework, arch)
    values = m.named_parameters()
    assert counts["trainable"] == sum(values[n].size for n in head)
    assert sorted(m.trainable_names()) == sorted(head)
    full = backend.create_model(arch, 3, image_size=SIZE)
    full.configure(make_plan("full"), OptimConfig(lr=0.01))
    assert full.param_counts()["trainable"] == counts["total"]
    return counts


def check_param_groups(backend, framework, arch):
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("head-lr-x10"), OptimConfig(lr=0.01))
    groups = m.param_groups()
    assert set(groups) == {"0.01", "0.1"}
    assert sorted(groups["0.1"]) == sorted(head_names(m, framework, arch))
    names = [n for g in groups.values() for n in g]
    assert len(names) == len(set(names)) == len(m.trainable_names())  # each param in one group
    t = arch_view(arch, framework)
    lw = backend.create_model(arch, 3, image_size=SIZE)
    lw.configure(make_plan("layerwise"), OptimConfig(lr=1.0))
    for lr, members in lw.param_groups().items():
        for n in members:
            assert float(lr) == make_plan("layerwise").lr_mult[t.stage_of(n)], n


def bn_affine(model, table) -> set[str]:
    """Names of BatchNorm scale and shift parameters: those with running statistics beside them."""
    names = set(model.named_parameters())
    stats = {table.to_canonical(n)[:-len("running_var")] for n in names if table.to_canonical(n).endswith("running_var")}
    return {n for n in names if table.to_canonical(n).rsplit(".", 1)[0] + "." in stats
            and table.to_canonical(n).endswith((".weight", ".bias"))}


def check_weight_decay_reaches_every_parameter(backend, arch):
    """BatchNorm scale and shift included: MindSpore's ungrouped default would skip them."""
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("head-lr-x10"), OptimConfig(lr=0.01, weight_decay=1e-3))
    groups = m.weight_decay_groups()
    assert list(groups) == ["0.001"]
    assert sorted(groups["0.001"]) == sorted(m.trainable_names())
    bn = bn_affine(m, arch_view(arch, backend.name))
    assert bn and bn <= set(groups["0.001"])


def check_train_step_reduces_loss(backend, arch):
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("full"), OptimConfig(lr=0.01, momentum=0.9, weight_decay=0.0))
    x, y = batch()
    losses = [m.train_step(x, y)[0] for _ in range(8)]
    assert losses[-1] < losses[0] * 0.7, losses


def check_frozen_stay_frozen(backend, framework, arch):
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("freeze-2"), OptimConfig(lr=0.05, momentum=0.9))
    before = m.named_parameters()
    x, y = batch()
    for _ in range(3):
        m.train_step(x, y)
    after = m.named_parameters()
    t = arch_view(arch, framework)
    frozen = [n for n in before if t.stage_of(n) in ("stem", "stage1")]
    trained = [n for n in before if t.stage_of(n) in ("stage3", "head")]
    assert frozen and all(np.array_equal(before[n], after[n]) for n in frozen)  # incl. BN statistics
    changed = [n for n in trained if not np.array_equal(before[n], after[n])]
    assert len(changed) >= len(trained) // 2
    stats = [n for n in trained if "mean" in n]
    assert stats and any(not np.array_equal(before[n], after[n]) for n in stats)  # BN stats still move


def check_bn_stats_frozen_everywhere(backend, framework, arch):
    """--bn-stats frozen: every running statistic fixed, every weight still trained."""
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("full", bn_stats_frozen=True), OptimConfig(lr=0.05, momentum=0.9))
    before = m.named_parameters()
    x, y = batch()
    for _ in range(2):
        m.train_step(x, y)
    after = m.named_parameters()
    stats = [n for n in before if any(k in n for k in ("running", "moving"))]
    assert stats and all(np.array_equal(before[n], after[n]) for n in stats)
    assert len(m.trainable_names()) == len(before) - len(stats)
    scales = [n for n in bn_affine(m, arch_view(arch, framework)) if arch_view(arch, framework).to_canonical(n).endswith("weight")]
    assert any(not np.array_equal(before[n], after[n]) for n in scales)


def check_save_load_roundtrip(backend, arch, tmp_path, suffix):
    m = backend.create_model(arch, 3, image_size=SIZE)
    m.configure(make_plan("full"), OptimConfig(lr=0.01))
    x, y = batch()
    m.train_step(x, y)
    path = str(tmp_path / f"rt{suffix}")
    m.save_weights(path)
    m2 = backend.create_model(arch, 3, image_size=SIZE, seed=5)
    report = m2.load_weights(path)
    assert not report.dropped and not report.missing
    np.testing.assert_allclose(m.predict(x), m2.predict(x), rtol=1e-5, atol=1e-5)
