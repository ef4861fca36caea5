"""Hostile inputs III, the record files themselves: what is not a regular file of a sane size is
never read, a record changed after its run is refused, and each is named while the others report."""
import json
import os
import signal
from contextlib import contextmanager

from bench.cli import main
from bench.records.store import MAX_RECORD_BYTES, read_records, write_record

from ..report.test_report_groups import record


def _good(tmp_path, n=2):
    out = tmp_path / "runs"
    for seed in range(n):
        write_record(record(seed=seed, backend="torch", model="resnet18"), out)
    return out


def _problems(out):
    with _within(20):
        records, problems = read_records([out])
    return records, "\n".join(problems)


@contextmanager
def _within(seconds):
    """Fail (instead of hanging the session) when reading takes longer than ``seconds``."""
    def hung(*_):
        raise AssertionError(f"reading the records took more than {seconds} s: it blocked or never ended")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_among_the_records_is_named_and_never_read(tmp_path):
    out = _good(tmp_path)
    os.mkfifo(out / "pipe.json")  # opening it for reading would block until a writer comes
    records, said = _problems(out)
    assert len(records) == 2 and "pipe.json" in said and "not a regular file" in said


def test_a_link_to_dev_zero_is_refused_without_reading_it(tmp_path):
    out = _good(tmp_path)
    (out / "zero.json").symlink_to("/dev/zero")
    records, said = _problems(out)
    assert len(records) == 2 and "zero.json" in said and "not a regular file" in said


def test_a_record_over_the_size_cap_is_refused(tmp_path):
    out = _good(tmp_path)
    big = record(seed=9, backend="torch", model="resnet18")
    big["notes_blob"] = "x" * (MAX_RECORD_BYTES + 1)
    (out / "big.json").write_text(json.dumps(big))
    records, said = _problems(out)
    assert len(records) == 2 and "big.json" in said and f"larger than {MAX_RECORD_BYTES >> 20} MiB" in said


def test_an_edited_config_under_a_kept_hash_is_refused(tmp_path):
    out = _good(tmp_path)
    rec = record(seed=5, backend="torch", model="resnet18")
    rec["config"]["lr"] = 0.5  # a valid lr, edited after the run; the stored hash is the old config's
    (out / "edited.json").write_text(json.dumps(rec))
    records, said = _problems(out)
    assert len(records) == 2 and "edited.json" in said and "the config was changed after the run" in said


def test_a_trial_whose_score_is_not_its_curves_is_refused(tmp_path):
    from bench.plan.config import RunConfig
    out = _good(tmp_path)
    rec = record(seed=0, backend="torch", model="resnet18", trial=0, study="k" * 16)
    rec["curve"][-1].update(val_acc=0.5, val_loss=1.0, n_val=10, val_correct=5)
    rec["accuracy"] = {"final": None, "val": {"acc": 0.9, "loss": 1.0, "n": 10}}  # edited score
    rec["config_hash"] = RunConfig.from_json(rec["config"]).config_hash()
    rec["group_hash"] = RunConfig.from_json(rec["config"]).group_hash()
    (out / "trial.json").write_text(json.dumps(rec))
    records, said = _problems(out)
    assert len(records) == 2 and "trial.json" in said and "does not match the curve's last validation point" in said


def test_an_unknown_architecture_skips_one_record_not_the_report(tmp_path, capsys):
    from bench.plan.config import RunConfig
    out = _good(tmp_path)
    rec = record(seed=7, backend="torch", model="resnet18")
    rec["config"]["model"] = "resnet999"
    rec["config_hash"] = RunConfig.from_json(rec["config"]).config_hash()
    rec["group_hash"] = RunConfig.from_json(rec["config"]).group_hash()
    (out / "unknown.json").write_text(json.dumps(rec))
    assert main(["report", "--format", "markdown", str(out)]) == 0
    printed = capsys.readouterr()
    assert "resnet18" in printed.out and "unknown.json" in printed.err and "unknown model 'resnet999'" in printed.err
