"""A sweep is a plan: pretrain steps first (once per config hash), each in its own process
with its own record; a failed pretrain fails only the arms that need it."""
import pytest

from bench.cli import main
from bench.plan.config import RunConfig
from tests.records import load_records
from bench.plan.sweep import plan_sweep


@pytest.fixture
def transfer(tiny_transfer):
    return tiny_transfer(epochs=2)


def _argv(tmp_path, *extra):
    return ["run", "--backend", "fake", "--experiment", "tiny-transfer", "--pretrain-backend", "fake",
            "--strategy", "full,linear-probe", "--seeds", "2", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", *extra]


def test_plan_puts_one_pretrain_step_first(transfer, tmp_path):
    configs = [transfer.arm_config("fake", "finetune", s, seed=seed, pretrain_backend="fake")
               for s in ("full", "linear-probe") for seed in (0, 1)]
    configs.append(transfer.arm_config("fake", "scratch", "scratch", scratch_init="shared"))
    plan = plan_sweep(configs, tmp_path / "cache")
    assert [j.config.arm for j in plan] == ["pretrain", "finetune", "finetune", "finetune", "finetune", "scratch"]
    assert len(plan[0].dependents) == 4 and all(j.needs == plan[0].key for j in plan[1:5])
    assert plan[5].needs is None and all(j.weights == plan[0].weights for j in plan[1:5])


def test_pretrain_runs_in_its_own_process_with_its_own_record(transfer, tmp_path):
    assert main(_argv(tmp_path)) == 0
    records = load_records([tmp_path / "out"])
    pre = [r for r in records if r["config"]["arm"] == "pretrain"]
    assert len(pre) == 1 and pre[0]["status"] == "ok" and pre[0]["timing"]["peak_rss_mb"] > 0
    arms = [r for r in records if r["config"]["arm"] != "pretrain"]
    assert len(arms) == 2 * 2 + 2  # 2 strategies x 2 seeds + scratch x 2 seeds
    from bench.weights.canonical import file_sha256
    written = file_sha256(tmp_path / "cache" / "weights" / f"fake_mlp-{pre[0]['config_hash']}.npz")
    finetuned = [r["model"]["weights"] for r in arms if r["config"]["arm"] == "finetune"]
    assert {w["sha256"] for w in finetuned} == {written}
    assert {w["pretrain_run_id"] for w in finetuned} == {pre[0]["run_id"]}


def test_a_cached_pretrain_file_without_its_digest_is_pretrained_again(transfer, tmp_path, capsys):
    """An older suite's cache (no recorded sha256) or a file changed since: the sweep pretrains again,
    says so, and its arms run (they failed, each with the cache's error, before)."""
    from bench.weights.canonical import digest_path
    assert main(_argv(tmp_path)) == 0
    (pre,) = [r for r in load_records([tmp_path / "out"]) if r["config"]["arm"] == "pretrain"]
    cached = tmp_path / "cache" / "weights" / f"fake_mlp-{pre['config_hash']}.npz"
    digest_path(cached).unlink()
    assert main(_argv(tmp_path, "--out", str(tmp_path / "again"))) == 0
    err = capsys.readouterr().err
    assert "has no recorded digest" in err and "pretraining it again" in err
    records = load_records([tmp_path / "again"])
    assert any(r["config"]["arm"] == "pretrain" for r in records) and all(r["status"] == "ok" for r in records)
    assert digest_path(cached).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("fault,why", [("crash", "exited with code 3"), ("kill", "signal SIGKILL")])
def test_failed_pretrain_fails_its_arms_and_the_sweep_goes_on(transfer, tmp_path, monkeypatch, fault, why):
    monkeypatch.setenv("FAKE_FAULT", fault)
    monkeypatch.setenv("FAKE_FAULT_CLASSES", "3")  # only the pretrain model has 3 classes
    assert main(_argv(tmp_path)) == 1
    records = load_records([tmp_path / "out"])
    (pre,) = [r for r in records if r["config"]["arm"] == "pretrain"]
    assert pre["status"] == "failed" and why in pre["error"]
    finetuned = [r for r in records if r["config"]["arm"] == "finetune"]
    assert len(finetuned) == 4 and all(r["status"] == "failed" for r in finetuned)
    assert all(f"its pretrain step {pre['config_hash']} failed" in r["error"] for r in finetuned)
    scratch = [r for r in records if r["config"]["arm"] == "scratch"]
    assert len(scratch) == 2 and all(r["status"] == "ok" for r in scratch)  # independent jobs still ran
    monkeypatch.delenv("FAKE_FAULT")
    assert main(_argv(tmp_path, "--resume")) == 0  # resumes after the failed step
    again = load_records([tmp_path / "out"])
    assert sum(r["status"] == "ok" for r in again if r["config"]["arm"] == "finetune") == 4
    assert sum(r["config"]["arm"] == "scratch" for r in again) == 2  # not re-run


@pytest.mark.slow
def test_pretrain_timeout_is_its_own(transfer, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAULT", "hang")
    monkeypatch.setenv("FAKE_FAULT_CLASSES", "3")
    assert main(_argv(tmp_path, "--timeout", "6", "--seeds", "1")) == 1
    (pre,) = [r for r in load_records([tmp_path / "out"]) if r["config"]["arm"] == "pretrain"]
    assert "timed out after 6 s" in pre["error"]


def test_config_group_hash_ignores_only_the_seed():
    a = RunConfig(seed=0)
    assert a.group_hash() == a.replace(seed=3).group_hash()
    assert a.group_hash() != a.replace(lr=0.02).group_hash() != a.replace(epochs=9).group_hash()
