"""Every record kind is a class whose from_json is the check a record passes when read: a malformed
record of any kind is named with what is wrong and skipped, never a traceback; every kind says where
(machine, commit) and how cleanly (contention) it was measured."""
import copy
import json

import pytest

from bench.plan.config import RunConfig
from bench.plan.study import Study
from bench.records.kinds import (KINDS, Invalid, Machine, OverheadRecord, ProfileRecord, StudyRecord,
                                 TuneRecord)
from bench.records.store import read_records

ARM = RunConfig(backend="fake", model="fake_mlp", experiment="folder", dataset="folder", arm="finetune",
                strategy="full", val_shots=2).to_json()
ROW = {"trial": 0, "point": {"lr": 0.01, "weight_decay": 1e-4, "schedule": 1}, "status": "ok", "val_acc": 0.5,
       "val_loss": 1.0, "n_val": 10}
ENV = {"cpu": "AMD EPYC", "cpu_flags": ["avx2", "avx512f"], "cpu_count": 2, "gpu": [],
       "git": {"commit": "abc", "dirty": False}}


def study() -> dict:
    plan = Study(RunConfig.from_json(ARM), trials=2)
    rows = [dict(ROW, trial=i, point=p, val_acc=0.5 + 0.1 * i) for i, p in enumerate(plan.points())]
    return StudyRecord.new(plan.to_json(), 1, rows, [0],
                           [{"config": {"study": plan.key}, "environment": ENV,
                             "timing": {"contention": {"busy": True, "other_share": 0.3}}}]).to_json()


def overhead() -> dict:
    loop = {"rounds": 1, "errors": [], "median_ms": 5.0, "round_medians_ms": [5.0], "contended": False}
    spec = {"backend": "fake", "model": "fake_mlp", "strategy": "full", "image_size": 8, "batch_size": 4}
    return OverheadRecord.new(spec, {"native": loop, "harness": dict(loop)}, {}, ENV, round_ratios=[1.0]).to_json()


def tune() -> dict:
    row = {"knob": "(defaults)", "value": "", "rounds_ms": {"fake_mlp 8px": [5.0]}, "errors": {}, "busy": False}
    return TuneRecord.new("fake", {}, "full", 4, 1, [row], None, ENV).to_json()


def profile() -> dict:
    spec = {"backend": "fake", "model": "fake_mlp", "strategy": "full", "image_size": 8, "batch_size": 4}
    return ProfileRecord.new(spec, {}, {"ops_ms": {"conv": 3.0}, "wall_ms": 4.0, "environment": ENV,
                                        "contention": {"busy": False}}).to_json()


BUILT = {"study": study, "overhead": overhead, "tune": tune, "profile": profile}


@pytest.mark.parametrize("kind", sorted(BUILT))
def test_every_built_kind_reads_back_and_says_where_it_was_measured(kind):
    rec = KINDS[kind].from_json(json.loads(json.dumps(BUILT[kind]())))
    assert rec.machine == Machine.of(ENV) and rec.commit.commit == "abc"
    assert isinstance(rec.contention.busy, bool)


def test_a_study_is_measured_where_its_trials_ran():
    rec = StudyRecord.from_json(study())
    assert rec.data["machines"] == [Machine.of(ENV).key] and rec.contention.busy and rec.contention.other_share == 0.3


BAD = [("study", lambda r: r.update(winner=5), "winner '5' is not one of the 2 trials"),
       ("study", lambda r: r.update(winner=0), "winner 0 is not the best trial by validation (1)"),
       ("study", lambda r: r["trial_results"][0].update(val_acc=0.9), "winner 1 is not the best trial"),
       ("study", lambda r: r.update(key="k1"), "key 'k1' is not its arm's"),
       ("study", lambda r: r["arm"].update(lr=0.5), "is not its arm's, space's and budget's"),
       ("study", lambda r: r["trial_results"][1]["point"].update(lr=0.3), "a trial's point is not the one"),
       ("study", lambda r: r.update(trials="8"), "trials is '8', expected a count"),
       ("study", lambda r: r.update(trials=1_000_000_000), "trials 1000000000 is outside [1, 256]"),
       ("study", lambda r: r["trial_results"][0].update(val_acc="0.9"), "trial_results[0].val_acc is '0.9'"),
       ("study", lambda r: r["arm"].update(lr=-1), "its arm is not a valid run configuration"),
       ("overhead", lambda r: r["native"].update(round_medians_ms=["99999"]), "native.round_medians_ms is '99999'"),
       ("overhead", lambda r: r["harness"].update(round_medians_ms=[True]), "harness.round_medians_ms is 'True'"),
       ("overhead", lambda r: r.update(round_ratios=[-1.0]), "round_ratios -1.0 is outside [0, None]"),
       ("overhead", lambda r: r["environment"].update(cpu=7), "environment.cpu is '7', expected a str"),
       ("tune", lambda r: r.update(rows="all"), "rows is a str, expected a list"),
       ("tune", lambda r: r["rows"][0]["rounds_ms"].update(x=[1e999]), "expected a finite number"),
       ("profile", lambda r: r["ops_ms"].update(conv="3"), "ops_ms['conv'] is '3'"),
       ("profile", lambda r: r["environment"].update(peak={"kernels": {"mm": {"precision": "fp32", "gflops": "x"}}}),
        "kernels['mm'].gflops is 'x'")]


@pytest.mark.parametrize("kind,spoil,said", BAD, ids=[b[2][:40] for b in BAD])
def test_a_malformed_record_of_any_kind_says_what_is_wrong(kind, spoil, said):
    rec = copy.deepcopy(BUILT[kind]())
    spoil(rec)
    with pytest.raises(Invalid, match=None) as e:
        KINDS[kind].from_json(rec)
    assert said in str(e.value)


def test_reading_names_the_malformed_file_and_keeps_the_others(tmp_path):
    good, bad = study(), study()
    bad["winner"] = 7
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    records, problems = read_records([tmp_path], "study")
    assert [r["key"] for r in records] == [study()["key"]]
    assert len(problems) == 1 and "bad.json" in problems[0] and "malformed study record: winner '7'" in problems[0]
