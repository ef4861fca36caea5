"""A tuning study on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``: a head and
two worker raylets): the same records as the local executor, and a node removed mid-study
loses no finished trial while its lost trials run again elsewhere."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.records import load_records

from ...conftest import write_image_folder

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[3]
ENV = {"BENCH_BACKENDS": "fake=tests.fake_backend:FakeBackend", "PYTHONPATH": str(ROOT),
       "BENCH_ARCHITECTURES": "tests.fake_backend"}


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("BENCH_TIMING_LOCK", str(tmp_path / "timing.lock"))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


def _argv(folder, out, *extra, backend="fake"):
    return ["run", "--backend", backend, "--model", "fake_mlp", "--data-dir", str(folder), "--pretrained", "none",
            "--strategy", "full,linear-probe", "--image-size", "8", "--epochs", "2", "--batch-size", "4",
            "--search", "4", "--seeds", "2", "--val-shots", "3", "--out", str(out), "--no-progress", *extra]


def _driver(argv, **env):
    return subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, env=os.environ | ENV | env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _summary(out):
    records = load_records([out])
    studies = {json.loads(p.read_text())["key"]: json.loads(p.read_text())["winner"] for p in out.glob("*_study_*")}
    return sorted((r["config_hash"], r["status"], r["accuracy"].get("final"),
                   (r["accuracy"].get("val") or {}).get("acc")) for r in records), studies


@pytest.mark.slow
def test_a_study_on_a_multi_node_cluster(cluster, fake_backend, tmp_path):
    c, workers = cluster
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    local = _driver(_argv(folder, tmp_path / "local"))
    assert local.wait(timeout=600) == 0, local.stdout.read()
    ray_run = _driver(_argv(folder, tmp_path / "ray", "--executor", "ray", "--ray-address", c.address))
    assert ray_run.wait(timeout=600) == 0, ray_run.stdout.read()
    assert _summary(tmp_path / "ray") == _summary(tmp_path / "local")
    nodes = {r["node_id"] for r in load_records([tmp_path / "ray"])}
    assert len(nodes) >= 2  # the trials really ran on more than one raylet

    # a node leaves mid-study: finished trials stay, the lost ones run again on the others
    out = tmp_path / "lossy"
    driver = _driver(_argv(folder, out, "--executor", "ray", "--ray-address", c.address),
                     FAKE_FAULT="slow", FAKE_FAULT_STEP="1", FAKE_FAULT_SLEEP="3")
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*.json"))) < 2:
        time.sleep(0.3)
    before = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert before, "no trial finished before the node was to be removed"
    c.remove_node(workers[0])
    log, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, log[-3000:]
    assert all((out / name).read_bytes() == data for name, data in before.items())  # nothing finished is lost
    records = load_records([out])
    hashes = [r["config_hash"] for r in records]
    assert len(hashes) == len(set(hashes)) == 3 * 4 + 3 * 2 and all(r["status"] == "ok" for r in records)
    assert "submitted again" in log  # the trials lost with the node ran again
    assert _summary(out)[1] == _summary(tmp_path / "local")[1]  # the same winners


@pytest.mark.slow
def test_a_study_on_a_cluster_runs_each_release_in_its_own_environment(cluster, fake_backend, tmp_path):
    """``--backend fake@1.0,fake``: the release's trials and finals start with its environment's interpreter
    on whichever node runs them (under the driver's BENCH_ENV_ROOT), the other backend's with the shared one."""
    from tests.bench.execute.test_environments import fake_env
    c, _ = cluster
    directory = fake_env(tmp_path / "envs", "fake@1.0", {"fake": "1.0"})
    folder = write_image_folder(tmp_path / "imgs", per_class=10)
    out = tmp_path / "ray"
    driver = _driver(_argv(folder, out, "--executor", "ray", "--ray-address", c.address, backend="fake@1.0,fake"),
                     BENCH_ENV_ROOT=str(tmp_path / "envs"))
    assert driver.wait(timeout=600) == 0, driver.stdout.read()
    records = load_records([out])
    released = [r for r in records if r["config"].get("framework_version") == "1.0"]
    assert len(released) == len(records) // 2 == 3 * 4 + 3 * 2 and all(r["status"] == "ok" for r in records)
    assert len((directory / "started").read_text().splitlines()) == len(released)
    assert len({r["node_id"] for r in released}) >= 2
