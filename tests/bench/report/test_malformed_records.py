"""One malformed record never stops report, compare, resume or plots: it is named and skipped."""
import json

import pytest

from bench.cli import main

from ...conftest import write_image_folder

MUTATIONS = {
    "no-accuracy": lambda r: r.pop("accuracy"),
    "empty-accuracy": lambda r: r.__setitem__("accuracy", {}),
    "final-null": lambda r: r["accuracy"].__setitem__("final", None),
    "final-string": lambda r: r["accuracy"].__setitem__("final", "0.9"),
    "no-arm": lambda r: r["config"].pop("arm"),
    "no-seed": lambda r: r["config"].pop("seed"),
    "seed-string": lambda r: r["config"].__setitem__("seed", "1"),
    "curve-dict": lambda r: r.__setitem__("curve", {"epoch": 1}),
    "timing-list": lambda r: r.__setitem__("timing", []),
    "environment-string": lambda r: r.__setitem__("environment", "linux"),
    "flags-string": lambda r: r.__setitem__("flags", "collapsed"),
    "hash-list": lambda r: r.__setitem__("config_hash", ["a"]),
    "lr-string": lambda r: r["config"].__setitem__("lr", "fast"),
    # nested numbers the tables read (hostile inputs III: each crashed bench report)
    "median-string": lambda r: r["timing"]["steady"].__setitem__("median_ms", "abc"),
    "compile-string": lambda r: r["timing"].__setitem__("compile_ms", "slow"),
    "tta-string": lambda r: r["time_to_accuracy"].__setitem__("train_s", "soon"),
    "flops-number": lambda r: r["model"].__setitem__("flops", 7),
    "cpu-flags-number": lambda r: r["environment"].__setitem__("cpu_flags", 5),
    "gpu-number": lambda r: r["environment"].__setitem__("gpu", 3),
}
RAW = {
    "huge-int": lambda text: text.replace('"seed": 0', '"seed": ' + "9" * 5000),
    "nan": lambda text: text.replace('"final": ', '"final": NaN, "x": ', 1),
    "infinity": lambda text: text.replace('"final": ', '"final": Infinity, "x": ', 1),
    "deep": lambda text: "[" * 100_000 + "]" * 100_000,
    "truncated": lambda text: text[: len(text) // 2],
    "not-json": lambda text: "hello",
    "a-list": lambda text: "[1, 2]",
}


@pytest.fixture
def folder_with_bad_records(fake_backend, tmp_path):
    folder = write_image_folder(tmp_path / "imgs")
    out = tmp_path / "out"
    argv = ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(folder), "--pretrained", "none",
            "--image-size", "8", "--epochs", "2", "--batch-size", "4", "--seeds", "2", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    good = sorted(out.glob("*.json"))
    text = good[0].read_text()
    for name, mutate in MUTATIONS.items():
        rec = json.loads(text)
        mutate(rec)
        (out / f"bad-{name}.json").write_text(json.dumps(rec))
    for name, mutate in RAW.items():
        (out / f"bad-{name}.json").write_text(mutate(text))
    (out / "bad-utf8.json").write_bytes(b'{"schema_version": 2, "x": "\xff\xfe"}')
    return out, argv, len(good)


def test_report_prints_the_good_records_and_one_line_per_bad_one(folder_with_bad_records, capsys):
    out, _, good = folder_with_bad_records
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("bench: skipped:")]
    assert len(skipped) == len(MUTATIONS) + len(RAW) + 1 and "Traceback" not in captured.err
    assert all(f"bad-{name}.json" in captured.err for name in list(MUTATIONS) + list(RAW))
    assert "nan" not in captured.out.lower().replace("native", "")
    assert "finetune" in captured.out and "scratch" in captured.out  # the good records' tables


def test_resume_compare_and_plots_skip_them_too(folder_with_bad_records, tmp_path, capsys):
    out, argv, good = folder_with_bad_records
    assert main(argv + ["--resume"]) == 0
    assert "skip (--resume)" in capsys.readouterr().out
    assert main(["compare", str(out), str(out)]) == 0
    assert main(["report", str(out), "--plots", str(tmp_path / "plots")]) == 0
    assert main(["report", str(out), "--strict"]) == 2
