import subprocess

import pytest
import sys

from bench.cli import main


def test_list_names_backends_and_strategies(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mxnet" in out and "mindspore" in out and "torch" in out and "linear-probe" in out
    assert "digits-transfer" in out and "mobilenet_v3_small" in out


def test_unknown_backend_is_one_line_exit_2(capsys):
    assert main(["run", "--backend", "tensorflow"]) == 2
    err = capsys.readouterr().err
    assert "unknown backend 'tensorflow'" in err and "mxnet" in err and "Traceback" not in err


def test_unknown_strategy_exit_2(capsys):
    assert main(["run", "--strategy", "magic"]) == 2
    assert "unknown strategy" in capsys.readouterr().err


def test_missing_data_dir_exit_2(fake_backend, tmp_path, capsys):
    rc = main(["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(tmp_path / "nope"),
               "--pretrained", "none", "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2 and "--data-dir" in (err := capsys.readouterr().err) and "no such directory" in err


def test_run_and_report_with_fake_backend(fake_backend, image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder),
               "--pretrained", "none", "--epochs", "2", "--batch-size", "4", "--image-size", "8",
               "--arms", "finetune,scratch", "--strategy", "full,linear-probe",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    assert len(list(out.glob("*.json"))) == 3
    assert main(["report", str(out), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "linear-probe" in text and "## Measured on" in text
    assert "| top-1 (final)" in text and "## Fine-tuned minus scratch" in text


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "bench", "list"], capture_output=True, text=True)
    assert r.returncode == 0 and "strategies" in r.stdout


def test_native_loader_refused_where_absent(fake_backend, image_folder, tmp_path, capsys):
    rc = main(["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder),
               "--pretrained", "none", "--loader", "native", "--arms", "scratch",
               "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 1 and "has no native loader" in capsys.readouterr().err  # a failed record, the sweep goes on


def test_resume_skips_finished_configurations(fake_backend, image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder),
            "--pretrained", "none", "--epochs", "1", "--batch-size", "4", "--image-size", "8",
            "--arms", "scratch", "--seeds", "2", "--out", str(out), "--no-progress"]
    assert main(argv[:-3] + ["--seeds", "1", "--out", str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.json"))) == 1
    assert main(argv + ["--resume"]) == 0
    assert len(list(out.glob("*.json"))) == 2  # only seed 1 ran again
    assert "skip (--resume)" in capsys.readouterr().out


def test_compare_flags_a_real_slowdown(fake_backend, image_folder, tmp_path, capsys, monkeypatch):
    import time

    from bench.measure import timing
    from tests.fake_backend import FakeModel
    # compare leaves out times taken while other processes used the CPU; these runs last a fraction of a
    # second, where the contention probe's tick resolution alone can cross its threshold, so the test
    # takes the probe out of play (the exclusion itself: test_report_groups, contended runs)
    monkeypatch.setattr(timing, "BUSY_SHARE", float("inf"))
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder),
            "--pretrained", "none", "--epochs", "4", "--batch-size", "4", "--image-size", "8",
            "--arms", "scratch", "--no-progress", "--in-process"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    slow = FakeModel.train_step

    def slowed(self, x, y):
        time.sleep(0.02)
        return slow(self, x, y)

    monkeypatch.setattr(FakeModel, "train_step", slowed)
    assert main(argv + ["--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    slow_row = [l for l in capsys.readouterr().out.splitlines() if "scratch" in l][0]
    assert "x *" in slow_row and slow_row.rstrip().endswith("same")  # slower, beyond the noise, same machine


def test_backend_without_its_framework_names_the_extra(monkeypatch, capsys):
    monkeypatch.setenv("BENCH_BACKENDS", "ghost=backends.ghost_backend:GhostBackend")
    assert main(["run", "--backend", "ghost", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and 'pip install -e ".[ghost]"' in err
    assert "python -m bench env create ghost" in err  # or its own environment (JAX's way: NumPy 2)


def test_unknown_dataset_and_model_list_valid_ones(tmp_path, capsys):
    out = ["--out", str(tmp_path / "out"), "--no-progress", "--in-process"]
    assert main(["run", "--dataset", "imagenet-21k", *out]) == 2
    assert "unknown dataset 'imagenet-21k'" in capsys.readouterr().err
    assert main(["run", "--model", "vgg99", *out]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'vgg99'" in err and "resnet18" in err
    assert not (tmp_path / "out").exists()  # bad input writes no record


def test_a_users_run_leaves_the_published_results_untouched(fake_backend, image_folder, tmp_path, monkeypatch):
    from pathlib import Path
    results = Path(__file__).resolve().parents[3] / "results"
    assert (results / "README.md").is_file()
    before = sorted((p.relative_to(results), p.stat().st_mtime_ns) for p in results.rglob("*"))
    monkeypatch.chdir(results)  # a user standing in the published folder
    monkeypatch.setenv("BENCH_OUT", str(tmp_path / "runs"))
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(image_folder), "--image-size", "8",
            "--epochs", "1", "--pretrained", "none", "--no-progress"]
    assert main(argv) == 0
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    assert sorted((p.relative_to(results), p.stat().st_mtime_ns) for p in results.rglob("*")) == before


def test_the_default_out_is_the_checkouts_runs_wherever_the_command_runs(tmp_path, monkeypatch):
    from bench.commands.args import default_out
    from bench.measure.environment import PROJECT_ROOT
    monkeypatch.delenv("BENCH_OUT", raising=False)
    monkeypatch.chdir(PROJECT_ROOT / "results")
    assert default_out() == PROJECT_ROOT / "runs"


def test_records_and_weights_get_the_umask_mode(tmp_path):
    import os
    import numpy as np
    from bench.records.store import write_json_atomic
    from bench.weights.canonical import write_canonical
    old = os.umask(0o022)
    os.umask(old)
    expect = 0o666 & ~old
    a = write_json_atomic(tmp_path / "r.json", {"x": 1.0, "y": float("nan")})
    write_canonical(tmp_path / "w.npz", "resnet18", {"w": np.zeros(2, np.float32)})
    assert (a.stat().st_mode & 0o777) == expect and ((tmp_path / "w.npz").stat().st_mode & 0o777) == expect
    assert '"y": null' in a.read_text()  # NaN is not JSON: written as null


@pytest.mark.parametrize("argv,match", [
    (["--backend="], "expected one or more"), (["--arms="], "expected one or more"),
    (["--backend", "mxnet,mxnet"], "more than once"), (["--strategy", "full,full"], "more than once"),
    (["--classes", "a,a"], "more than once"), (["--lr", "inf"], "a number in \\(0, 10\\]"),
    (["--lr", "1e308"], "a number in"), (["--weight-decay", "inf"], "a number in"),
    (["--seeds", "1000000000"], "an integer in \\[1, 1000\\]"), (["--batch-size", str(10 ** 12)], "an integer in"),
    (["--seed", str(2 ** 64)], "an integer in"), (["--ray-address", "auto"], "for --executor ray"),
    (["--max-retries", "2"], "for --executor ray"),
])
def test_values_that_mean_nothing_are_refused(argv, match, capsys, tmp_path):
    import re
    try:
        code = main(["run", *argv, "--out", str(tmp_path / "o")])
    except SystemExit as e:  # refused by the parser
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_imagenet_scale_plans_every_lite_with_its_own_recipe_and_model_takes_a_list():
    from bench.cli import make_parser
    from bench.commands.run import build_configs
    args = make_parser().parse_args(["run", "--backend", "torch", "--experiment", "imagenet-scale",
                                     "--arms", "finetune"])
    configs = build_configs(args)
    assert sorted({c.model for c in configs}) == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert {c.strategy for c in configs} == {"linear-probe", "full"} and all(c.image_size == 64 for c in configs)
    assert {c.optimizer for c in configs} == {"adam"}  # the Lites' recipe
    args = make_parser().parse_args(["run", "--backend", "torch", "--model", "resnet18,efficientnet_lite1",
                                     "--arms", "finetune", "--strategy", "full"])
    assert [c.model for c in build_configs(args)] == ["resnet18", "efficientnet_lite1"]
