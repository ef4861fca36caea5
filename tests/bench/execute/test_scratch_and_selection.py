"""Scratch arms start from one shared canonical init; 'best' is chosen on a validation split;
a run that ends at chance is flagged; the overhead tool measures side by side."""
import numpy as np
import pytest

from bench.cli import main
from bench.plan.config import RunConfig
from tests.records import load_records
from bench.execute.runner import execute
from bench.weights.scratch_init import shared_init, shared_init_file
from bench.weights.canonical import read_canonical

from ...conftest import write_image_folder


def test_shared_init_is_deterministic_and_follows_its_rules(tmp_path):
    shapes = {"conv1.weight": (64, 3, 7, 7), "fc.weight": (10, 512), "fc.bias": (10,),
              "bn1.weight": (64,), "bn1.bias": (64,), "bn1.running_mean": (64,), "bn1.running_var": (64,)}
    a, b = shared_init("resnet18", shapes, 0), shared_init("resnet18", shapes, 0)
    assert all(np.array_equal(a[n], b[n]) for n in shapes)
    assert not np.array_equal(a["conv1.weight"], shared_init("resnet18", shapes, 1)["conv1.weight"])
    assert abs(a["conv1.weight"].std() - np.sqrt(2 / (64 * 49))) < 0.01 * np.sqrt(2 / (64 * 49)) * 10
    assert np.abs(a["fc.weight"]).max() <= np.sqrt(6 / 522)
    assert (a["bn1.weight"] == 1).all() and (a["bn1.running_var"] == 1).all() and not a["fc.bias"].any()
    path = shared_init_file("resnet18", shapes, 0, tmp_path)
    assert shared_init_file("resnet18", shapes, 0, tmp_path) == path
    meta, state = read_canonical(path)
    assert meta["source"]["seed"] == 0 and np.array_equal(state["conv1.weight"], a["conv1.weight"])


def _config(folder, **kw):
    base = dict(backend="fake", model="fake_mlp", experiment="folder", dataset="folder", data_dir=str(folder),
                pretrained="none", arm="scratch", strategy="scratch", epochs=3, batch_size=4, lr=0.5,
                image_size=8, warmup_steps=1, scratch_init="shared")
    return RunConfig(**(base | kw))


def test_scratch_arm_loads_the_shared_init(fake_backend, image_folder, tmp_path):
    rec = execute(_config(image_folder), tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    weights = rec["model"]["weights"]
    assert weights["source"] == "shared init" and len(weights["sha256"]) == 64
    assert weights["load"]["loaded"] == 3 and not weights["load"]["missing"]
    native = execute(_config(image_folder, scratch_init="native"), tmp_path / "out", progress=False)
    assert "own initialiser" in native["model"]["weights"]["source"]
    assert native["config_hash"] != rec["config_hash"]


def test_scratch_init_both_runs_each(fake_backend, image_folder, tmp_path):
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder), "--arms",
            "scratch", "--scratch-init", "both", "--image-size", "8", "--epochs", "1", "--out",
            str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--in-process"]
    assert main(argv) == 0
    assert sorted(r["config"]["scratch_init"] for r in load_records([tmp_path / "out"])) == ["native", "shared"]


def test_best_epoch_is_chosen_on_a_validation_split(fake_backend, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    rec = execute(_config(folder, val_fraction=0.3, epochs=4), tmp_path / "out", progress=False)
    assert rec["data"]["train_images"] == 14 and rec["data"]["val_images"] == 6
    chosen = rec["accuracy"]["selected"]
    epoch = [p for p in rec["curve"] if p["epoch"] == chosen["epoch"]][0]
    assert chosen["val_acc"] == max(p["val_acc"] for p in rec["curve"]) and chosen["test_acc"] == epoch["eval_acc"]
    assert "validation split" in chosen["note"]


def test_a_run_at_chance_is_flagged(fake_backend, tmp_path):
    folder = tmp_path / "same"
    for k, name in enumerate(("a", "b")):  # both classes look alike: nothing to learn
        write_image_folder(folder, classes=(name,), seed=k, per_class=20)
    rec = execute(_config(folder, epochs=2), tmp_path / "out", progress=False)
    (flag,) = rec["flags"]
    assert flag["flag"] == "collapsed" and "not above chance 1/2 = 0.500" in flag["why"]
    good = execute(_config(write_image_folder(tmp_path / "ok"), epochs=8), tmp_path / "out", progress=False)
    assert good["accuracy"]["final"] > 0.9 and good["flags"] == []


def test_overhead_tool_runs_both_loops_side_by_side(fake_backend, tmp_path, capsys):
    argv = ["overhead", "--backend", "fake", "--model", "fake_mlp", "--image-size", "8", "--strategy", "full",
            "--rounds", "2", "--steps", "5", "--warmup", "1", "--out", str(tmp_path / "ov")]
    assert main(argv) == 0
    (path,) = (tmp_path / "ov").glob("*.json")
    import json
    rec = json.loads(path.read_text())
    assert rec["native"]["n"] == rec["harness"]["n"] == 10 and len(rec["round_ratios"]) == 2
    assert rec["ratio"] > 0 and rec["environment"]["settings"] is not None
    capsys.readouterr()
    assert main(["overhead", "--from", str(tmp_path / "ov"), "--format", "markdown"]) == 0
    out, speed = capsys.readouterr().out.split("## Speed against the machine's peak")
    (row,) = [line for line in out.splitlines() if "fake_mlp" in line]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[:6] == ["processes", "fake", "fake_mlp", "8", "full", "fp32"] and cells[9] == "2"
    assert len([line for line in speed.splitlines() if "fake_mlp" in line]) == 1  # and one speed row
    assert rec["ratio"] == pytest.approx(sum(rec["round_ratios"]) / 2)  # the median of the rounds' ratios
    within = int(rec["ratio"] <= 1.05)  # the verdict line counts what the record says
    assert f"processes: {within} of 1 measured combinations at or below harness/native 1.05" in out
    # a re-measurement of the same combination pools its rounds with the first: one row, three rounds
    once = argv.copy()
    once[once.index("--rounds") + 1] = "1"
    assert main(once) == 0
    capsys.readouterr()
    assert main(["overhead", "--from", str(tmp_path / "ov"), "--format", "markdown"]) == 0
    out = capsys.readouterr().out.split("## Speed against the machine's peak")[0]
    (row,) = [line for line in out.splitlines() if "fake_mlp" in line]
    assert [c.strip() for c in row.split("|")[1:-1]][9] == "3"
