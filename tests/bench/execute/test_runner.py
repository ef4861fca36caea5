"""The runner end to end on the NumPy fake backend and a tiny image folder."""
import json

import numpy as np

from backends import registry
from bench.plan.config import RunConfig
from bench.execute.local import RunOptions, run_local
from bench.plan.sweep import plan_sweep
from bench.report.tables import render_gaps, render_strategy_matrix, render_table
from tests.records import load_records
from bench.execute.runner import execute
from bench.weights.canonical import read_canonical

from ...fake_backend import FAKE_INFO, FakeBackend


def _config(folder, **kw):
    base = dict(backend="fake", model="fake_mlp", experiment="folder", dataset="folder",
                data_dir=str(folder), pretrained="none", arm="finetune", strategy="full",
                epochs=3, batch_size=4, lr=0.5, image_size=8, warmup_steps=1, target_accuracy=0.6)
    base.update(kw)
    return RunConfig(**base)


def test_record_has_schema_fields(fake_backend, image_folder, tmp_path):
    rec = execute(_config(image_folder), tmp_path / "out", progress=False)
    assert rec["status"] == "ok"
    saved = json.loads(open(rec["path"]).read())
    for key in ("config", "config_hash", "environment", "curve", "timing", "accuracy", "model",
                "time_to_accuracy", "schema_version", "created"):
        assert key in saved
    assert len(saved["curve"]) == 3
    t = saved["timing"]
    assert t["compile_ms"] > 0 and t["warmup"]["n"] == 1 and t["steady"]["n"] == 3 * 3 - 2
    assert t["steady"]["img_per_s"] > 0 and t["peak_rss_mb"] > 0
    assert saved["environment"]["frameworks"]["numpy"] == np.__version__
    assert saved["accuracy"]["n_eval"] == 12
    lo, hi = saved["accuracy"]["final_ci95"]
    assert lo <= saved["accuracy"]["final"] <= hi
    assert saved["model"]["params"]["trainable"] == saved["model"]["params"]["total"]


def test_learns_the_colour_task(fake_backend, image_folder, tmp_path):
    rec = execute(_config(image_folder, epochs=8), tmp_path, progress=False)
    assert rec["accuracy"]["final"] > 0.9


def test_linear_probe_freezes_stem_and_scales_groups(fake_backend, image_folder, tmp_path):
    rec = execute(_config(image_folder, strategy="linear-probe"), tmp_path, progress=False)
    assert rec["model"]["param_groups"] == {"0.5": ["head.w", "head.b"]}
    assert rec["model"]["params"]["trainable"] < rec["model"]["params"]["total"]
    rec = execute(_config(image_folder, strategy="head-lr-x10"), tmp_path, progress=False)
    assert rec["model"]["param_groups"] == {"0.5": ["stem.w"], "5": ["head.w", "head.b"]}


def test_divergence_is_recorded_not_raised(fake_backend, image_folder, tmp_path, monkeypatch):
    orig = FakeBackend.create_model

    def diverging(self, *a, **k):
        m = orig(self, *a, **k)
        m.diverge_after = 4
        return m

    monkeypatch.setattr(FakeBackend, "create_model", diverging)
    rec = execute(_config(image_folder), tmp_path, progress=False)
    assert rec["status"] == "diverged" and "nan" in rec["error"]
    assert load_records([tmp_path])[0]["status"] == "diverged"


def test_a_suite_pretrained_arm_needs_its_planned_weights(fake_backend, image_folder, tmp_path):
    rec = execute(_config(image_folder, pretrained="suite", experiment="digits-transfer"), tmp_path, progress=False)
    assert rec["status"] == "failed" and "run it through a sweep plan" in rec["error"]


def test_bad_input_found_in_a_run_is_a_failed_record(fake_backend, tmp_path):
    rec = execute(_config(tmp_path / "nowhere"), tmp_path / "out", progress=False)
    assert rec["status"] == "failed" and rec["error"].startswith("DatasetError: data directory")
    assert rec["finished"] and load_records([tmp_path / "out"])[0]["error"] == rec["error"]


def test_report_renders_side_by_side(fake_backend, image_folder, tmp_path):
    execute(_config(image_folder), tmp_path, progress=False)
    execute(_config(image_folder, arm="scratch", strategy="scratch"), tmp_path, progress=False)
    records = load_records([tmp_path])
    text = render_table(records, "markdown")
    assert "| folder" in text and "finetune" in text and "scratch" in text
    assert text.count("\n") >= 3
    gaps = render_gaps(records, "markdown")
    assert "| folder" in gaps and "1 seed: eval-set interval (Newcombe)" in gaps


def test_strategy_matrix_puts_backends_side_by_side(fake_backend, image_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "fake2", FAKE_INFO)
    for backend in ("fake", "fake2"):
        for seed in (0, 1):
            for strategy in ("full", "linear-probe"):
                execute(_config(image_folder, backend=backend, strategy=strategy, seed=seed), tmp_path,
                        progress=False)
        execute(_config(image_folder, backend=backend, arm="scratch", strategy="scratch"), tmp_path,
                progress=False)
    text = render_strategy_matrix(load_records([tmp_path]), "markdown")
    lines = text.splitlines()
    assert lines[0].startswith("#### folder: fake_mlp")
    header, rows = lines[2], [line.split("|")[1].strip() for line in lines[4:]]
    assert [c.strip() for c in header.split("|")[1:-1]] == ["strategy", "fake", "fake2"]
    assert rows == ["linear-probe", "full", "scratch (native init)"]  # MindCV's Aircraft-table order
    assert "(2)" in lines[4] and "(1)" in lines[6]


def test_suite_pretrain_is_cached(fake_backend, image_folder, tmp_path, monkeypatch):
    from bench.plan import experiments
    exp = experiments.Experiment(
        name="tiny-transfer", description="", dataset="folder", pretrained="suite",
        models={"*": "fake_mlp"}, common=dict(image_size=8, batch_size=4, epochs=2, data_dir=str(image_folder)),
        pretrain=dict(dataset="folder", data_dir=str(image_folder), epochs=2, batch_size=4, lr=0.5))
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny-transfer", exp)
    monkeypatch.setitem(registry.REGISTRY, "fake2", FAKE_INFO)
    cfg = exp.arm_config("fake", "finetune", "full", pretrain_backend="fake")
    out, cache = tmp_path / "out", tmp_path / "cache"
    opts = RunOptions(out=out, cache_dir=cache, data_root=tmp_path / "data", progress=False, in_process=True)
    plan = plan_sweep([cfg, cfg.replace(seed=1), cfg.replace(backend="fake2")], cache)
    assert [job.config.arm for job in plan] == ["pretrain", "finetune", "finetune", "finetune"]
    _, r1, r2, r3 = run_local(plan, opts)
    w1, w2, w3 = (r["model"]["weights"] for r in (r1, r2, r3))
    assert w1["path"] == w2["path"] == w3["path"] and w1["path"].endswith(".npz")
    assert w1["sha256"] == w3["sha256"] and w3["pretrain_backend"] == "fake"
    arms = sorted(r["config"]["arm"] for r in load_records([out]))
    assert arms == ["finetune"] * 3 + ["pretrain"]  # pretrained once, reused by every backend
    assert w1["load"]["loaded"] == 1  # stem only: source and target both have 2 classes,
    assert sorted(d.split(" ")[0] for d in w1["load"]["dropped"]) == ["head.b", "head.w"]  # yet no head is reused
    meta, state = read_canonical(w1["path"])
    assert meta["arch"] == "fake_mlp" and meta["source"]["backend"] == "fake"
    assert sorted(state) == ["head.b", "head.w", "stem.w"]


def test_plots_are_written(fake_backend, image_folder, tmp_path):
    from bench.report.plots import write_plots
    execute(_config(image_folder), tmp_path / "r", progress=False)
    execute(_config(image_folder, arm="scratch", strategy="scratch"), tmp_path / "r", progress=False)
    records = load_records([tmp_path / "r"])
    for r in records:  # whatever else this machine is doing now
        r["timing"]["contention"]["busy"] = False
    paths = write_plots(records, tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["folder-accuracy.png", "folder-gap.png", "step-time.png"]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    records[0]["timing"]["contention"]["busy"] = True  # a contended run is left out of the speed chart
    assert "step-time.png" not in [p.name for p in write_plots(records[:1], tmp_path / "plots2")]
