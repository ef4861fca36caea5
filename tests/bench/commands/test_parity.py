"""``bench parity``: the porting check as a user runs it (one child per backend), and its table."""
import json
import subprocess
import sys

import pytest

from bench.parity.check import TOLERANCE
from bench.parity.table import render
from tests.backends.installed import BACKENDS


def _result(backend, error, stem_error=0.0):
    step = {"step": 0, "loss": 1.5, "ref_loss": 1.5, "lr": {"head": 0.012}, "protocol_lr": {"head": 0.012},
            "stages": {"stem": {"error": stem_error, "tensor": "conv1.weight"},
                       "head": {"error": error, "tensor": "fc.weight"}},
            "running_stats": {"head": {"error": 0.0, "tensor": "x"}}}
    config = {"model": "resnet18", "strategy": "full", "optimizer": "momentum", "lr": 0.01, "schedule": "cosine",
              "lr_warmup_epochs": 1, "nesterov": True, "label_smoothing": 0.1, "decay_filter": "no-bias-bn",
              "batch_size": 4, "image_size": 32}
    return {"backend": backend, "config": config, "steps": [step]}


def test_table_gives_one_verdict_per_backend():
    text = render([_result("a", TOLERANCE / 10), _result("b", TOLERANCE * 10), _result("c", 0.0, float("inf")),
                   {"backend": "d", "error": "exit code 1: boom"}])
    assert "a: PASS" in text and "b: FAIL" in text and "c: FAIL" in text and "moved" in text
    assert "d: FAILED to run: exit code 1: boom" in text


@pytest.mark.skipif("torch" not in BACKENDS, reason="needs torch")
def test_bench_parity_runs_a_recipe_in_child_processes(tmp_path):
    out = tmp_path / "parity.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "parity", "--backend", "torch", "--model",
                           "mobilenet_v3_small", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch: PASS" in proc.stdout and "head lr (applied)" in proc.stdout
    result = json.loads(out.read_text())[0]
    assert result["dropout_layers_off"] == 1 and len(result["steps"]) == 6
    assert result["config"]["nesterov"] and result["config"]["schedule"] == "cosine"


@pytest.mark.parametrize("argv,message", [
    (["--model", "densenet121"], "--model densenet121: the NumPy reference defines"),
    (["--strategy", "freeze-9"], "'freeze-9': N must be 1..5"),
    (["--weights", "/nonexistent.npz"], "--weights /nonexistent.npz: no such file"),
    (["--schedule", "step"], "--schedule step needs --milestones"),
])
def test_bad_parity_options_are_refused_before_any_child(argv, message):
    proc = subprocess.run([sys.executable, "-m", "bench", "parity", "--backend", BACKENDS[0] if BACKENDS else "torch",
                           *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-800:]
    assert "parity: " not in proc.stderr  # no backend was started
