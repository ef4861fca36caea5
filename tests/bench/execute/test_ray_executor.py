"""`bench run --executor ray` on a local Ray cluster started here (ray.init(num_cpus=2)):
the same records as the local executor, faults as failed records, resume, pretrain -> arms."""
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from tests.records import load_records

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not importlib.util.find_spec("ray"), reason="needs the ray extra")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local cluster for the module; workers inherit the fake backend's registration."""
    import ray
    env = {"BENCH_BACKENDS": "fake=tests.fake_backend:FakeBackend", "PYTHONPATH": str(ROOT),
           "BENCH_ARCHITECTURES": "tests.fake_backend",
           "BENCH_TIMING_LOCK": str(tmp_path_factory.mktemp("lock") / "timing.lock")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _sweep(folder, out, *extra, backend="fake", model="fake_mlp"):
    return ["run", "--backend", backend, "--model", model, "--data-dir", str(folder), "--strategy", "full,linear-probe",
            "--image-size", "8", "--epochs", "1", "--seeds", "2", "--pretrained", "none", "--out", str(out),
            "--no-progress", *extra]


def _outcome(out) -> set[tuple[str, str]]:
    return {(r["config_hash"], r["status"]) for r in load_records([out])}


@pytest.mark.slow
def test_resume_after_an_interrupted_ray_sweep(fake_backend, image_folder, tmp_path):
    """The driver is killed mid-sweep (seed 3 hangs, so it never ends by itself); `--resume`
    runs only what has no ok record and keeps every record written before."""
    out = tmp_path / "out"
    argv = _sweep(image_folder, out, "--executor", "ray", "--seeds", "4")
    env = os.environ | {"FAKE_FAULT": "hang", "FAKE_FAULT_SEED": "3", "FAKE_FAULT_STEP": "1", "PYTHONPATH": str(ROOT),
                        "BENCH_BACKENDS": "fake=tests.fake_backend:FakeBackend",
                        "BENCH_ARCHITECTURES": "tests.fake_backend"}
    driver = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # its local Ray cluster shares its fate
    driver.wait()
    before = {p.name for p in out.glob("*.json")}
    assert 3 <= len(before) < 12
    env.pop("FAKE_FAULT")
    r = subprocess.run([sys.executable, "-m", "bench", *argv, "--resume"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    after = load_records([out])
    assert {p.name for p in out.glob("*.json")} >= before and len(after) == 12
    assert r.stdout.count("skip (--resume)") == len(before) and all(x["status"] == "ok" for x in after)


def test_ray_gives_the_same_records_as_the_local_executor(cluster, fake_backend, image_folder, tmp_path):
    assert main(_sweep(image_folder, tmp_path / "local")) == 0
    assert main(_sweep(image_folder, tmp_path / "ray", "--executor", "ray")) == 0
    assert _outcome(tmp_path / "ray") == _outcome(tmp_path / "local") and len(_outcome(tmp_path / "ray")) == 6
    rec = load_records([tmp_path / "ray"])[0]
    assert rec["node"] and rec["environment"]["settings"] is not None and not rec["timing"]["packed"]


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("mxnet"), reason="needs the mxnet extra")
def test_ray_with_a_real_backend(cluster, image_folder, tmp_path):
    argv = ["--stem", "cifar", "--arms", "scratch", "--seeds", "1", "--image-size", "16"]
    base = _sweep(image_folder, tmp_path / "local", backend="mxnet", model="resnet18")
    base = [a for a in base if a not in ("--strategy", "full,linear-probe")]
    assert main(base + argv) == 0
    assert main([a if a != str(tmp_path / "local") else str(tmp_path / "ray") for a in base] + argv
                + ["--executor", "ray"]) == 0
    assert _outcome(tmp_path / "ray") == _outcome(tmp_path / "local")
    (rec,) = load_records([tmp_path / "ray"])
    omp = rec["environment"]["settings"]["OMP_NUM_THREADS"]  # MXNet's default, not the 1 Ray sets
    assert omp["value"] == str(os.cpu_count()) and omp["origin"].startswith("bench default")


@pytest.mark.slow
@pytest.mark.parametrize("fault,why", [("kill", "signal SIGKILL"), ("killparent", "ray task failed")])
def test_a_killed_run_or_worker_becomes_a_failed_record(cluster, fake_backend, image_folder, tmp_path, monkeypatch,
                                                        fault, why):
    import ray
    ray.shutdown()  # workers must see the fault injection: a fresh cluster with it in the environment
    monkeypatch.setenv("FAKE_FAULT", fault)
    monkeypatch.setenv("FAKE_FAULT_SEED", "1")
    monkeypatch.setenv("FAKE_FAULT_STEP", "1")  # these runs take one step
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert main(_sweep(image_folder, tmp_path / "out", "--executor", "ray", "--arms", "finetune")) == 1
    finally:
        ray.shutdown()
        monkeypatch.delenv("FAKE_FAULT")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    records = load_records([tmp_path / "out"])
    assert sorted((r["config"]["seed"], r["status"]) for r in records) == [(0, "ok"), (0, "ok"), (1, "failed"),
                                                                          (1, "failed")]
    assert all(why in r["error"] for r in records if r["status"] == "failed")
    from tests.processes import wait_for_none
    assert wait_for_none(str(image_folder)) == []  # a dead worker's child died with it (its config names the folder)


def test_a_pretrain_task_feeds_two_arms_through_the_object_store(cluster, tiny_transfer, tmp_path):
    tiny_transfer(epochs=1)
    argv = ["run", "--backend", "fake", "--experiment", "tiny-transfer", "--pretrain-backend", "fake", "--arms",
            "finetune", "--strategy", "full,linear-probe", "--out", str(tmp_path / "out"), "--cache-dir",
            str(tmp_path / "cache"), "--executor", "ray", "--no-progress"]
    assert main(argv) == 0
    records = load_records([tmp_path / "out"])
    (pre,) = [r for r in records if r["config"]["arm"] == "pretrain"]
    arms = [r for r in records if r["config"]["arm"] == "finetune"]
    weights = tmp_path / "cache" / "weights" / f"fake_mlp-{pre['config_hash']}.npz"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(arms) == 2 and {a["model"]["weights"]["sha256"] for a in arms} == {digest}


def test_weights_from_the_object_store_are_checked(tmp_path):
    from bench.core.errors import BenchError
    from bench.execute.ray_executor import _place_weights
    good = {"weights": b"abc", "sha256": hashlib.sha256(b"abc").hexdigest()}
    _place_weights(good, tmp_path / "w.npz")
    assert (tmp_path / "w.npz").read_bytes() == b"abc"
    with pytest.raises((ValueError, BenchError), match="sha256"):
        _place_weights({"weights": b"abd", "sha256": good["sha256"]}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_ray_missing_is_one_line(monkeypatch, fake_backend, image_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(_sweep(image_folder, tmp_path / "out", "--executor", "ray")) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
