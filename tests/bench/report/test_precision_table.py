"""Reduced precision beside fp32: seeds paired, the change judged against its interval."""
from bench.report.tables import precision_pairs, render_precision, render_report

from .test_report_groups import record


def _runs(precision, accs, **config):
    return [record(seed=s, acc=a, precision=precision, **config) for s, a in enumerate(accs)]


def test_bf16_pairs_with_the_fp32_run_of_the_same_configuration_only():
    recs = (_runs("fp32", [0.80, 0.82, 0.81]) + _runs("bf16", [0.80, 0.83, 0.81])
            + _runs("bf16", [0.5, 0.5, 0.5], lr=0.5))  # another configuration: no fp32 partner
    pairs = precision_pairs(recs)
    assert len(pairs) == 1 and pairs[0][0].config.get("precision", "fp32") == "fp32"
    assert pairs[0][1].config["precision"] == "bf16" and pairs[0][1].config["lr"] != 0.5


def test_a_change_inside_the_seed_spread_is_not_called_a_change():
    text = render_precision(_runs("fp32", [0.80, 0.84, 0.78]) + _runs("bf16", [0.81, 0.83, 0.79]))
    assert "no resolved change" in text and "bf16" in text and "3 paired seeds" in text


def test_a_consistent_drop_is_resolved_and_named():
    text = render_precision(_runs("fp32", [0.80, 0.84, 0.78, 0.82]) + _runs("bf16", [0.70, 0.73, 0.69, 0.71]))
    assert "lower (resolved)" in text and "-0.10" in text


def test_the_report_has_the_section_only_when_there_is_a_pair():
    assert "Reduced precision beside fp32" not in render_report(_runs("fp32", [0.8, 0.81]), "markdown")
    both = render_report(_runs("fp32", [0.8, 0.81]) + _runs("bf16", [0.8, 0.8]), "markdown")
    assert "## Reduced precision beside fp32" in both


def test_seeds_pair_only_when_measured_on_one_machine():
    fp32, bf16 = _runs("fp32", [0.80, 0.84, 0.78]), _runs("bf16", [0.81, 0.83, 0.79])
    for r in fp32:
        r["environment"] = {"cpu": "AMD EPYC", "cpu_flags": ["avx2"], "cpu_count": 2}
    for r in bf16:
        r["environment"] = {"cpu": "Intel Xeon", "cpu_flags": ["avx512f"], "cpu_count": 2}
    assert render_precision(fp32 + bf16) == ""
    for r in fp32[:2]:
        r["environment"] = dict(bf16[0]["environment"])
    assert "2 paired seeds" in render_precision(fp32 + bf16)
