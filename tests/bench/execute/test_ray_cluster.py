"""A tuning study on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``: a head and
two worker raylets): the same records as the local executor, and a node removed mid-study
loses no finished trial while its lost trials run again elsewhere."""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.records import load_records

from ...conftest import write_image_folder

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[3]
ENV = {"BENCH_BACKENDS": "fake=tests.fake_backend:FakeBackend", "PYTHONPATH": str(ROOT),
       "BENCH_ARCHITECTURES": "tests.fake_backend"}


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A pure-Python wheel holding only its metadata: a framework release pip can install offline."""
    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
        z.writestr(f"{info}/RECORD", "".join(f"{m},{digest(d)},{len(d)}\n" for m, d in files.items())
                   + f"{info}/RECORD,,\n")
    return path


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("BENCH_TIMING_LOCK", str(tmp_path / "timing.lock"))
    # the nodes' pip (Ray's runtime environments) installs from here only: the fake framework's release 1.0
    fake_wheel(tmp_path / "wheels", "fake", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    monkeypatch.setenv("RUNTIME_ENV_RETRY_TIMES", "1")  # Ray's default, 3, builds an unbuildable one thrice a node
    # each raylet builds runtime environments in a folder of its own, as on separate machines (on one host
    # they would share the session's folder, and two raylets would build the same environment at once)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "runtime_env_dir_name": "runtime_resources_head"})
    workers = [c.add_node(num_cpus=1, runtime_env_dir_name=f"runtime_resources_{i}") for i in range(2)]
    c.wait_for_nodes()
    session = Path(c.head_node.get_session_dir_path())
    yield c, workers
    c.shutdown()
    for folder in session.glob("runtime_resources*"):  # a copy of this environment per node: gigabytes
        shutil.rmtree(folder, ignore_errors=True)


def _argv(folder, out, *extra, backend="fake", strategies="full,linear-probe", search="4", seeds="2"):
    return ["run", "--backend", backend, "--model", "fake_mlp", "--data-dir", str(folder), "--pretrained", "none",
            "--strategy", strategies, "--image-size", "8", "--epochs", "2", "--batch-size", "4",
            "--search", search, "--seeds", seeds, "--val-shots", "3", "--out", str(out), "--no-progress", *extra]


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
    """``--backend fake@1.0,fake``: the release's trials and finals run in its environment on whichever node
    runs them, the other backend's in the shared one. By default Ray builds that environment on each node as a
    runtime environment from the driver's exact versions; ``--ray-envs nodes`` starts the interpreter each node
    has under the driver's BENCH_ENV_ROOT; a release Ray cannot build fails its jobs, naming the backend."""
    from tests.bench.execute.test_environments import fake_env
    c, _ = cluster
    envs = tmp_path / "envs"
    directory = fake_env(envs, "fake@1.0", {"fake": "1.0", "bench": "0.1.0", "pip": "24.0"})
    folder = write_image_folder(tmp_path / "imgs", per_class=10)

    def study(out, *extra, root=envs, seeds="2"):
        driver = _driver(_argv(folder, out, "--executor", "ray", "--ray-address", c.address, *extra,
                               backend="fake@1.0,fake", strategies="full", search="2", seeds=seeds),
                         BENCH_ENV_ROOT=str(root))
        log, _ = driver.communicate(timeout=600)
        records = load_records([out])
        return driver.returncode, log, records, [r for r in records if r["config"].get("framework_version") == "1.0"]

    code, log, records, released = study(tmp_path / "runtime")
    assert code == 0, log[-3000:]
    assert len(released) == len(records) // 2 > 0 and all(r["status"] == "ok" for r in records)
    assert not (directory / "started").exists()  # not the node's copy: Ray's, built from the pins
    for r in released:
        assert re.search(r"/runtime_resources[^/]*/pip/\w+/virtualenv/bin/python$", r["environment"]["interpreter"])
        assert r["environment"]["packages"]["fake"] == "1.0"
    assert all("fake" not in r["environment"]["packages"] for r in records if r not in released)
    assert len({r["node_id"] for r in released}) >= 2

    code, log, records, released = study(tmp_path / "nodes", "--ray-envs", "nodes", seeds="1")
    assert code == 0, log[-3000:]
    assert len(released) == len(records) // 2 and all(r["status"] == "ok" for r in records)
    assert len((directory / "started").read_text().splitlines()) == len(released)

    # the driver's environment holds a release no node's pip can install: those jobs fail, saying why
    fake_env(tmp_path / "envs2", "fake@2.0", {"fake": "2.0"})
    out = tmp_path / "unbuildable"
    driver = _driver(_argv(folder, out, "--executor", "ray", "--ray-address", c.address, backend="fake@2.0",
                           strategies="full", search="2", seeds="1"), BENCH_ENV_ROOT=str(tmp_path / "envs2"))
    log, _ = driver.communicate(timeout=600)
    records = load_records([out])
    assert driver.returncode == 1 and records and all(r["status"] == "failed" for r in records), log[-3000:]
    assert all("Ray could not build the runtime environment of backend fake@2.0" in r["error"]
               and "fake==2.0" in r["error"] for r in records), records[0]["error"]
