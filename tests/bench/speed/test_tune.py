"""``bench tune``: each setting in its own process; records of one backend pool their processes."""
import json

from bench.cli import main


def test_tune_measures_each_setting_and_pools_later_rounds(fake_backend, tmp_path, capsys):
    argv = ["tune", "--backend", "fake", "--model", "fake_mlp", "--image-size", "8", "--steps", "3", "--warmup", "0",
            "--rounds", "1", "--knob", "BENCH_FAKE_KNOB=1", "--out", str(tmp_path / "t")]
    assert main(argv) == 0
    (path,) = (tmp_path / "t").glob("*.json")
    rec = json.loads(path.read_text())
    assert [(r["knob"], r["value"]) for r in rec["rows"]] == [("(defaults)", ""), ("BENCH_FAKE_KNOB", "1")]
    assert all(len(r["rounds_ms"]["fake_mlp 8px"]) == 1 for r in rec["rows"])
    assert main(argv[:-1] + [str(tmp_path / "t2")]) == 0  # measured again later, into another folder
    (second,) = (tmp_path / "t2").glob("*.json")
    second.rename(tmp_path / "t" / f"later-{second.name}")
    capsys.readouterr()
    assert main(["tune", "--from", str(tmp_path / "t"), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.count("## fake: train step") == 1  # one table for the backend, not one per record
    rows = [line for line in out.splitlines() if line.startswith("| BENCH_FAKE_KNOB") or line.startswith("| (defaults)")]
    assert len(rows) == 2 and all("n=2]" in row for row in rows)  # two processes per cell, pooled
