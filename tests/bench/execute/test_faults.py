"""Fault injection: crashes, kills, hangs and divergence inside a sweep lose nothing."""
import json

import pytest

from bench.cli import main
from tests.records import load_records


def _sweep(folder, out, *extra):
    return ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(folder),
            "--pretrained", "none", "--epochs", "2", "--batch-size", "4", "--image-size", "8",
            "--arms", "scratch", "--out", str(out), "--no-progress", *extra]


@pytest.fixture
def earlier_record(fake_backend, image_folder, tmp_path):
    out = tmp_path / "out"
    assert main(_sweep(image_folder, out)) == 0
    (path,) = out.glob("*.json")
    return out, path, path.read_bytes()


@pytest.mark.parametrize("fault,expect", [
    ("crash", "exited with code 3"),
    ("kill", "signal SIGKILL"),
    pytest.param("hang", "timed out after 8 s", marks=pytest.mark.slow),  # waits out its 8 s limit twice
])
def test_fault_becomes_failed_record_and_sweep_continues(fault, expect, earlier_record, image_folder,
                                                          monkeypatch, capsys):
    out, path, before = earlier_record
    monkeypatch.setenv("FAKE_FAULT", fault)
    rc = main(_sweep(image_folder, out, "--seed", "1", "--seeds", "2", "--timeout", "8"))
    assert rc == 1  # some runs failed
    records = load_records([out])
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 2 and all(expect in r["error"] for r in failed)
    assert path.read_bytes() == before  # the earlier record is untouched
    assert not list(out.glob("*.tmp"))
    assert "not finished" in capsys.readouterr().out


def test_nan_loss_recorded_as_diverged(earlier_record, image_folder, monkeypatch):
    out, _, _ = earlier_record
    monkeypatch.setenv("FAKE_FAULT", "nan")
    assert main(_sweep(image_folder, out, "--seed", "5")) == 1
    diverged = [r for r in load_records([out]) if r["status"] == "diverged"]
    assert len(diverged) == 1 and "nan" in diverged[0]["error"]


def test_resume_reruns_only_failed(earlier_record, image_folder, monkeypatch):
    out, path, _ = earlier_record
    monkeypatch.setenv("FAKE_FAULT", "crash")
    main(_sweep(image_folder, out, "--seeds", "2"))
    monkeypatch.delenv("FAKE_FAULT")
    assert main(_sweep(image_folder, out, "--seeds", "2", "--resume")) == 0
    statuses = sorted((r["config"]["seed"], r["status"]) for r in load_records([out]))
    # seed 0: earlier ok + crashed re-run; seed 1: crashed, then re-run by --resume
    assert statuses == [(0, "failed"), (0, "ok"), (1, "failed"), (1, "ok")]


def test_user_error_in_child_is_one_line(fake_backend, tmp_path, capsys):
    assert main(_sweep(tmp_path / "missing", tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "no such directory" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_no_disk_space_for_extraction(tmp_path, monkeypatch):
    import shutil
    import zipfile
    from collections import namedtuple

    from bench.core.errors import DatasetError
    from datasets.download import extract

    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("x/y.txt", "hello" * 100)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1000, 990, 10))
    with pytest.raises(DatasetError, match="not enough disk space"):
        extract(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert json.dumps({})  # nothing else written


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_leaves_no_child_training(fake_backend, image_folder, tmp_path, sig):
    """The parent is killed while its child trains: the child dies with it (process group on
    SIGTERM, PR_SET_PDEATHSIG on SIGKILL), so nothing trains outside the timing lock."""
    import os
    import signal
    import subprocess
    import sys

    from tests.processes import wait_for_none, wait_for_some
    out = tmp_path / f"out-{sig}"
    env = os.environ | {"FAKE_FAULT": "slow", "FAKE_FAULT_STEP": "1", "FAKE_FAULT_SLEEP": "120"}
    parent = subprocess.Popen([sys.executable, "-m", "bench", *_sweep(image_folder, out)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for_some(str(out)), "the child never started"
    parent.send_signal(getattr(signal, sig))
    parent.wait(timeout=30)
    assert wait_for_none(str(out)) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 60 MiB tmpfs (root only): a disk that can really fill up."""
    import subprocess
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_stops_the_sweep_with_one_line_and_loses_nothing(fake_backend, image_folder, small_disk,
                                                                       monkeypatch, capsys):
    out = small_disk / "out"
    monkeypatch.setenv("FAKE_FAULT", "filldisk")
    monkeypatch.setenv("FAKE_FAULT_SEED", "1")
    monkeypatch.setenv("FAKE_FAULT_FILL", str(small_disk / "filler"))
    assert main(_sweep(image_folder, out, "--seeds", "3")) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("bench: error:")]
    assert len(lines) == 1 and "no space left" in lines[0] and "2 of 3 jobs not run" in lines[0]
    assert "--resume" in lines[0] and "Traceback" not in err
    assert [r["config"]["seed"] for r in load_records([out])] == [0]  # the earlier record survives
    (small_disk / "filler").unlink()
    monkeypatch.delenv("FAKE_FAULT")
    assert main(_sweep(image_folder, out, "--seeds", "3", "--resume")) == 0
    assert sorted(r["config"]["seed"] for r in load_records([out])) == [0, 1, 2]


def test_a_configuration_still_running_elsewhere_is_waited_for_not_run_twice(fake_backend, image_folder, tmp_path):
    """--resume while an old child of the same configuration still trains: the new sweep waits."""
    import os
    import subprocess
    import sys
    import time

    from bench.execute.child import running_lock
    from bench.plan.config import RunConfig
    cache = tmp_path / "cache"
    argv = _sweep(image_folder, tmp_path / "out", "--cache-dir", str(cache))
    config = RunConfig.from_json(json.loads(subprocess.run(
        [sys.executable, "-c", "import json,sys; from bench.cli import make_parser; from bench.commands.run import "
         "build_configs; print(json.dumps(build_configs(make_parser().parse_args(sys.argv[1:]))[0].to_json()))",
         *argv], capture_output=True, text=True, env=os.environ).stdout))
    with running_lock(cache, config.config_hash()):
        sweep = subprocess.Popen([sys.executable, "-m", "bench", *argv], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert sweep.poll() is None  # waiting for the lock, not training beside it
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 0 and f"configuration {config.config_hash()} is still running" in err


def test_the_default_time_limit_comes_from_the_jobs_budget(fake_backend, image_folder, tmp_path, monkeypatch):
    from bench.plan.config import RunConfig
    small = RunConfig(shots=10, classes=("a", "b"), epochs=2, batch_size=4, eval_shots=5)
    assert 600 < small.default_timeout_s() < 700 < RunConfig(shots=None, epochs=50).default_timeout_s() <= 86400
    monkeypatch.setattr(RunConfig, "default_timeout_s", lambda self: 4.0)  # the parent applies it
    monkeypatch.setenv("FAKE_FAULT", "hang")
    assert main(_sweep(image_folder, tmp_path / "out")) == 1  # no --timeout given
    (rec,) = load_records([tmp_path / "out"])
    assert "timed out after 4 s (the default from the job's budget" in rec["error"]
