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
    ("hang", "timed out after 8 s"),
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
