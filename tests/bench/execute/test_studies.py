import pytest
"""Tuning studies (``bench run --search N``): the same budget for every arm, chosen on validation only."""
import json
import shutil

from bench.cli import main
from bench.plan.config import RunConfig
from bench.plan.study import Study, select
from tests.records import load_records

from ...conftest import write_image_folder


def _argv(folder, out, *extra):
    return ["run", "--backend", "fake", "--model", "fake_mlp", "--data-dir", str(folder), "--pretrained", "none",
            "--strategy", "full,linear-probe", "--image-size", "8", "--epochs", "2", "--batch-size", "4",
            "--search", "4", "--seeds", "2", "--val-shots", "3", "--out", str(out), "--no-progress", *extra]


def _studies(out):
    return {r["key"]: r for r in (json.loads(p.read_text()) for p in sorted(out.glob("*_study_*.json")))}


def test_every_arm_gets_the_same_trials_and_only_finals_see_test(fake_backend, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    out = tmp_path / "out"
    assert main(_argv(folder, out)) == 0
    records = load_records([out])
    trials = [r for r in records if r["config"]["trial"] is not None]
    finals = [r for r in records if r["config"]["study"] and r["config"]["trial"] is None]
    studies = _studies(out)
    assert len(studies) == 3 and len(trials) == 3 * 4 and len(finals) == 3 * 2   # full, linear-probe, scratch
    assert all(not any("eval_acc" in p for p in r["curve"]) and r["accuracy"]["final"] is None for r in trials)
    assert all("val_acc" in r["curve"][-1] and "val_acc" not in r["curve"][0] for r in trials)  # once, at the end
    assert all(r["accuracy"]["final"] is not None and "eval_acc" in r["curve"][-1] and "eval_acc" not in
               r["curve"][0] for r in finals)  # test scored once, at the end
    points = [[t["point"] for t in s["trial_results"]] for s in studies.values()]
    for other in points[1:]:  # the same quasi-random points: lr relative to each arm's recipe lr
        assert [(p["weight_decay"], p["schedule"]) for p in other] == [(p["weight_decay"], p["schedule"])
                                                                      for p in points[0]]
        ratios = [o["lr"] / p["lr"] for o, p in zip(other, points[0])]
        assert max(ratios) / min(ratios) < 1 + 1e-9
    for study in studies.values():
        winner = study["trial_results"][study["winner"]]
        seeded = [r for r in finals if r["config"]["study"] == study["key"]]
        assert sorted(r["config"]["seed"] for r in seeded) == [0, 1]
        assert all(r["config"]["lr"] == winner["point"]["lr"] for r in seeded)
        assert all(r["config"]["epochs"] == 2 * winner["point"]["schedule"] for r in seeded)
        assert winner["val_acc"] == max(t["val_acc"] for t in study["trial_results"])
    assert main(_argv(folder, out, "--resume")) == 0   # nothing re-runs
    assert len(load_records([out])) == len(records)


@pytest.mark.slow
def test_selection_never_reads_the_test_split(fake_backend, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(folder, shuffled)
    a, b = shuffled / "test" / "a", shuffled / "test" / "b"   # swap the test labels, nothing else
    a.rename(shuffled / "test" / "tmp")
    b.rename(a)
    (shuffled / "test" / "tmp").rename(b)
    assert main(_argv(folder, tmp_path / "o1")) == 0
    assert main(_argv(shuffled, tmp_path / "o2")) == 0
    one = {s["arm"]["strategy"]: s["winner"] for s in _studies(tmp_path / "o1").values()}
    two = {s["arm"]["strategy"]: s["winner"] for s in _studies(tmp_path / "o2").values()}
    assert one == two
    finals = lambda out: sorted(r["accuracy"]["final"] for r in load_records([out]) if r["config"]["study"]  # noqa: E731
                                and r["config"]["trial"] is None)
    assert finals(tmp_path / "o1") != finals(tmp_path / "o2")  # the swapped labels do reach the test scores


def test_the_sampler_gives_every_arm_and_backend_the_same_points():
    a = Study(RunConfig(backend="mxnet", lr=0.01, val_shots=5), 6)
    b = Study(RunConfig(backend="torch", arm="scratch", strategy="scratch", pretrained="none", lr=0.01,
                        val_shots=5), 6)
    assert a.points() == b.points() and a.key != b.key and len(a.points()) == 6
    lrs = [p["lr"] for p in a.points()]
    assert all(0.01 / 10 ** 1.5 <= lr <= 0.01 * 10 ** 1.5 for lr in lrs) and max(lrs) / min(lrs) > 10
    assert {p["schedule"] for p in a.points()} <= {1, 2, 4}
    assert select(a, [])[0] is None  # no trial records: no winner


def test_resume_keeps_a_decided_study_and_its_winner(fake_backend, tmp_path, capsys):
    """A trial that had no ok record the first time (here: its record removed) is not re-run once the
    study has chosen: a second chance for one trial would change the winner after its finals began."""
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    out = tmp_path / "out"
    assert main(_argv(folder, out)) == 0
    studies = _studies(out)
    trial_files = sorted(p for p in out.glob("*.json") if "_study_" not in p.name
                         and json.loads(p.read_text())["config"]["trial"] == 0)
    trial_files[0].unlink()
    capsys.readouterr()
    assert main(_argv(folder, out, "--resume")) == 0
    said = capsys.readouterr().out
    assert said.count("decided before (--resume)") == 3 and "trials: 0" in said
    assert _studies(out) == studies  # no new study record, the same winners
    assert not trial_files[0].exists()


def test_a_trial_with_two_different_scores_is_refused():
    from bench.core.errors import ConfigError
    base = RunConfig(backend="fake", model="fake_mlp", experiment="folder", dataset="folder", val_shots=2)
    study = Study(base, trials=2)
    recs = []
    for cfg in study.trial_configs():
        rec = {"config": cfg.to_json(), "config_hash": cfg.config_hash(), "status": "ok", "run_id": f"r{cfg.trial}",
               "accuracy": {"val": {"acc": 0.5, "loss": 1.0, "n": 10}}}
        recs.append(rec)
    copy = json.loads(json.dumps(recs[0]))
    copy["run_id"], copy["accuracy"]["val"]["acc"] = "copied", 0.99
    with pytest.raises(ConfigError, match="trial 0 has 2 ok records with different validation scores"):
        select(study, recs + [copy])
    twin = json.loads(json.dumps(recs[0]))
    twin["run_id"] = "retried"  # a job that finished twice (a retry on another node): the same score
    assert select(study, recs + [twin])[0] == 0
    assert select(study, recs)[0] == 0  # a tie on accuracy and loss: the earlier trial
