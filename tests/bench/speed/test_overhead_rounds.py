"""``bench overhead``: a combination whose rounds disagree gets further rounds, by their spread alone."""
import argparse

import pytest

from bench.speed import overhead


def _args(rounds=3, max_rounds=None, spread=0.05, design="interleaved"):
    return argparse.Namespace(rounds=rounds, max_rounds=max_rounds, spread=spread, design=design, set=[],
                              timeout=10, batch_size=4, steps=3, warmup=0)


def _fake_measure(monkeypatch, ratios):
    """Each interleaved round: native 10 ms, harness 10 ms x the next planted ratio."""
    planted = iter(ratios)
    calls = []

    def measure(spec, settings, timeout):
        r = next(planted)
        calls.append(r)
        def loop(ms):
            return {"steps_ms": [ms] * 3, "stats": {"median_ms": ms}, "compile_ms": 1.0, "contention": {"busy": False},
                    "environment": {"cpu": "test", "cpu_flags": [], "gpu": [], "cpu_count": 2}, "memory": {}}
        return {"loops": {"native": loop(10.0), "harness": loop(10.0 * r)}}
    monkeypatch.setattr(overhead, "measure", measure)
    monkeypatch.setattr(overhead, "spec_flops", lambda spec: {})
    return calls


@pytest.mark.parametrize("ratios, max_rounds, expect", [
    ([1.00, 1.01, 1.02, 1.5, 1.5], 9, 3),            # rounds agree: --rounds only
    ([1.00, 1.20, 1.01, 1.02, 1.01, 1.0, 1.0], 5, 5),  # disagree: up to --max-rounds
    ([1.00, 1.20, 1.01, 1.02, 1.01, 1.0, 1.0], None, 3),  # no --max-rounds: --rounds only
    ([0.90, 1.10, 1.02, 1.5, 1.5], 9, 3),            # far from 1.05 both ways, but within --spread 0.25: no more
])
def test_further_rounds_follow_the_spread_only(monkeypatch, ratios, max_rounds, expect):
    calls = _fake_measure(monkeypatch, ratios[:expect] + [1.0] * 20 if max_rounds is None else ratios + [1.0] * 20)
    args = _args(max_rounds=max_rounds, spread=0.25 if ratios[0] == 0.90 else 0.05)
    rec = overhead.run_combination("fake", "fake_mlp", 8, "full", args)
    assert len(calls) == expect and rec["spec"]["rounds"] == expect
    assert rec["round_ratios"] == pytest.approx(calls)
    assert ("min_rounds" in rec["spec"]) == (expect > 3)


def test_a_noisy_combination_stops_at_max_rounds(monkeypatch):
    calls = _fake_measure(monkeypatch, [1.0, 1.1] * 10)
    rec = overhead.run_combination("fake", "fake_mlp", 8, "full", _args(max_rounds=7))
    assert len(calls) == 7 and rec["spec"]["spread"] == 0.05 and rec["spec"]["min_rounds"] == 3
    assert overhead.ratio_of(rec) == pytest.approx(1.0)  # the median of 1.0 x4, 1.1 x3


def test_cli_states_the_range_of_the_new_options(capsys):
    from bench.cli import main
    with pytest.raises(SystemExit):
        main(["overhead", "--spread", "-1"])
    assert "--spread" in capsys.readouterr().err
