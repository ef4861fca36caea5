"""Runtime settings never leak between backends: the parent of a sweep imports no framework,
each child gets its own backend's settings explicitly, each record says where each came from."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends import settings
from backends.settings import ORIGIN_VAR, child_env, effective_settings, user_environment

ROOT = Path(__file__).resolve().parents[2]
AVX512 = "avx512f" in __import__("bench.measure.environment", fromlist=["cpu_flags"]).cpu_flags()


def test_child_env_gives_each_backend_only_its_defaults(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    mx = child_env("mxnet")
    assert mx["OMP_NUM_THREADS"] == str(os.cpu_count()) and "ONEDNN_MAX_CPU_ISA" not in mx
    origins = json.loads(mx[ORIGIN_VAR])
    assert origins["OMP_NUM_THREADS"].startswith("bench default")
    ms = child_env("mindspore")
    assert "OMP_NUM_THREADS" not in ms and ("ONEDNN_MAX_CPU_ISA" in ms) == AVX512


def test_what_the_suite_set_is_dropped_what_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv(ORIGIN_VAR, json.dumps({"ONEDNN_MAX_CPU_ISA": settings.DEFAULT}))
    assert "ONEDNN_MAX_CPU_ISA" not in child_env("mxnet")  # the MindSpore cap a parent applied in-process
    monkeypatch.setenv(ORIGIN_VAR, json.dumps({"ONEDNN_MAX_CPU_ISA": settings.USER}))
    assert child_env("mxnet")["ONEDNN_MAX_CPU_ISA"] == "AVX2"  # the user's own choice
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = child_env("mxnet")
    assert env["OMP_NUM_THREADS"] == "1" and json.loads(env[ORIGIN_VAR])["OMP_NUM_THREADS"] == settings.USER


def test_ray_workers_settings_come_from_the_driver(monkeypatch):
    worker = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin", "RAY_ADDRESS": "x"}  # Ray set OMP_NUM_THREADS
    env = child_env("mxnet", environ=worker, settings_from={"PATH": "/driver"})
    assert env["OMP_NUM_THREADS"] == str(os.cpu_count()) and env["PATH"] == "/usr/bin"


def test_effective_settings_read_the_c_environment(monkeypatch):
    import ctypes
    libc = ctypes.CDLL(None)
    monkeypatch.delenv("KMP_BLOCKTIME", raising=False)
    libc.setenv(b"KMP_BLOCKTIME", b"7", 1)  # as a framework does at import: invisible in os.environ
    try:
        got = effective_settings("mxnet")["KMP_BLOCKTIME"]
        assert got == {"value": "7", "origin": settings.FRAMEWORK}
        assert "KMP_BLOCKTIME" not in user_environment()
    finally:
        libc.unsetenv(b"KMP_BLOCKTIME")


@pytest.mark.skipif(not (importlib.util.find_spec("mxnet") and importlib.util.find_spec("mindspore")),
                    reason="needs the mxnet and mindspore extras")
@pytest.mark.slow
def test_mixed_sweep_mxnet_child_sees_no_mindspore_settings(image_folder, tmp_path):
    """`bench run --backend mindspore,mxnet`: the parent imports no framework, the MXNet child sees
    neither MindSpore's OMP_NUM_THREADS=1 nor the oneDNN ISA cap, the MindSpore child records both."""
    out = tmp_path / "out"
    code = (
        "import sys; from bench.cli import main; "
        f"rc = main(['run', '--backend', 'mindspore,mxnet', '--data-dir', {str(image_folder)!r}, '--arms', "
        f"'scratch', '--epochs', '1', '--batch-size', '4', '--image-size', '16', '--stem', 'cifar', "
        f"'--model', 'resnet18', '--out', {str(out)!r}, '--no-progress']); "
        "print('FRAMEWORKS', sorted(m for m in ('mxnet', 'mindspore', 'torch', 'gluoncv', 'mindcv') "
        "if m in sys.modules)); sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", ORIGIN_VAR)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FRAMEWORKS []" in r.stdout
    recs = {json.loads(p.read_text())["config"]["backend"]: json.loads(p.read_text()) for p in out.glob("*.json")}
    mx, ms = recs["mxnet"]["environment"]["settings"], recs["mindspore"]["environment"]["settings"]
    assert "ONEDNN_MAX_CPU_ISA" not in mx
    assert mx["OMP_NUM_THREADS"]["value"] == str(os.cpu_count())  # MXNet's own default, not MindSpore's 1
    assert ms["OMP_NUM_THREADS"] == {"value": "1", "origin": settings.FRAMEWORK}
    if AVX512:
        assert ms["ONEDNN_MAX_CPU_ISA"]["value"] == "AVX2" and ms["ONEDNN_MAX_CPU_ISA"]["origin"].startswith("bench")
    for rec in recs.values():
        assert rec["environment"]["cpu_flags"] and "contention" in rec["timing"]
