"""A row never mixes machines or starting files: records of one configuration measured on two
machines, or fine-tuned from two pretrained files, are two rows that say what tells them apart,
fine-tuned arms pair only with scratch arms of their machine, and "what tuning buys" compares a
tuned arm with its recipe only on one machine from one starting file."""
from bench.report.groups import group_records
from bench.report.studies import render_tuning_gains
from bench.report.tables import gap_rows, render_strategy_matrix, render_table

from .test_report_groups import record

EPYC = {"cpu": "AMD EPYC", "cpu_flags": ["avx2", "avx512f", "avx512_bf16"], "cpu_count": 2, "gpu": []}
XEON = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_flags": ["avx2", "avx512f", "amx_tile"], "cpu_count": 2, "gpu": []}
ZEN3 = {"cpu": "AMD EPYC", "cpu_flags": ["avx2", "avx512f"], "cpu_count": 2, "gpu": []}  # no avx512_bf16


def measured(rec: dict, env: dict, sha: str | None = None) -> dict:
    rec["environment"] = dict(env)
    if sha:
        rec["model"] = {"weights": {"sha256": sha, "source": "suite pretrain"}}
    return rec


def test_one_configuration_on_two_machines_is_two_rows_that_name_them():
    records = [measured(record(seed=s, acc=0.8), EPYC, "a" * 64) for s in (0, 1)] + \
              [measured(record(seed=s, acc=0.6), XEON, "a" * 64) for s in (0, 1)]
    groups = group_records(records)
    assert len(groups) == 2 and all(len(g.runs) == 2 for g in groups)
    assert sorted(g.variant for g in groups) == ["machine=AMD EPYC (avx512f, 2 cores, no gpu)",
                                                 "machine=Intel(R) Xeon(R) Processor (avx512f, 2 cores, no gpu)"]
    matrix = render_strategy_matrix(records, "markdown")
    assert "full [machine=AMD EPYC" in matrix and "full [machine=Intel(R) Xeon(R)" in matrix
    table = render_table(records, "markdown")
    assert table.splitlines()[0].rstrip("| ").endswith("machine")  # a table with times names the machine


def test_two_machines_with_one_name_are_told_apart_by_their_flags():
    records = [measured(record(seed=0), EPYC, "a" * 64), measured(record(seed=0, acc=0.5), ZEN3, "a" * 64)]
    variants = sorted(g.variant for g in group_records(records))
    assert len(variants) == 2 and all(v.startswith("machine=AMD EPYC") for v in variants)
    assert any("[avx2 avx512_bf16 avx512f]" in v for v in variants) and any("[avx2 avx512f]" in v for v in variants)


def test_one_configuration_from_two_pretrained_files_is_two_rows():
    records = [measured(record(seed=s), EPYC, "a" * 64) for s in (0, 1)] + \
              [measured(record(seed=s, acc=0.7), EPYC, "b" * 64) for s in (0, 1)]
    assert sorted(g.variant for g in group_records(records)) == ["start=aaaaaaaaaaaa", "start=bbbbbbbbbbbb"]


def test_scratch_arms_pair_only_on_their_own_machine():
    ft = [measured(record(seed=s, acc=0.8), EPYC, "a" * 64) for s in (0, 1)]
    sc_here = [measured(record(seed=s, acc=0.5, arm="scratch", strategy="scratch"), EPYC) for s in (0, 1)]
    sc_there = [measured(record(seed=s, acc=0.7, arm="scratch", strategy="scratch"), XEON) for s in (0, 1)]
    (row,) = gap_rows(ft + sc_here + sc_there)
    assert row[6:8] == ["0.800", "0.500"]


def test_tuning_gain_is_measured_within_one_machine_and_one_file():
    def tuned(rec):
        rec["config"]["study"] = "s1"
        return rec
    recipe = [measured(record(seed=s, acc=0.7), EPYC, "a" * 64) for s in (0, 1, 2)]
    tuned_here = [measured(tuned(record(seed=s, acc=0.8 + 0.005 * s, lr=0.05)), EPYC, "a" * 64) for s in (0, 1, 2)]
    text = render_tuning_gains(recipe + tuned_here, "markdown")
    assert "+0.105 [" in text and "gain (resolved)" in text
    tuned_there = [measured(tuned(record(seed=s, acc=0.9, lr=0.05)), XEON, "b" * 64) for s in (0, 1, 2)]
    text = render_tuning_gains(recipe + tuned_there, "markdown")
    assert "|" not in text and "not compared" in text and "Intel(R) Xeon(R)" in text and "from aaaaaaaa" in text


def test_the_frameworks_line_names_whose_validation_resolves_a_difference():
    from bench.report.studies import agreement

    def study(winner, accs):
        return {"winner": winner, "trial_results": [{"val_acc": a, "n_val": 200} for a in accs]}
    # torch picks trial 0, resolved above trial 1 on its validation; mxnet picks 1, within noise of 0 on its own
    line = agreement({"torch": study(0, [0.90, 0.60]), "mxnet": study(1, [0.70, 0.72])})
    assert line == "differ: resolved on torch's own validation; within noise on mxnet's"
    line = agreement({"torch": study(0, [0.71, 0.70]), "mxnet": study(1, [0.70, 0.72])})
    assert line.startswith("agree within the search's resolution") and "mxnet, torch's validation" in line
    assert agreement({"torch": study(1, [0.5, 0.9]), "mxnet": study(1, [0.4, 0.8])}) == "agree (same trial)"


def test_the_model_scale_lines_show_raw_and_holm_adjusted_p():
    from bench.report.scale import render_model_scale
    accs = {"efficientnet_lite0": (0.70, 0.71, 0.69), "efficientnet_lite1": (0.72, 0.70, 0.73),
            "efficientnet_lite2": (0.80, 0.79, 0.815)}
    records = [record(seed=s, acc=a, model=m, experiment="scale", n=1000)
               for m, values in accs.items() for s, a in enumerate(values)]
    text = render_model_scale(records, "markdown")
    line = [ln for ln in text.splitlines() if ln.startswith("  - fake, seeds paired")][0]
    assert "efficientnet_lite2 − efficientnet_lite0 +0.102 (p " in line and ", Holm " in line
    assert "resolved" in line and "Holm's step-down adjustment" in text


def test_mindspore_rows_from_before_seeded_dropout_say_their_seeds_do_not_reproduce():
    old = record(backend="mindspore", model="efficientnet_lite0")
    new = record(backend="mindspore", model="efficientnet_lite0", seed=1)
    new["environment"] = {"determinism": {"reproducible": True, "how": "seeded dropout"}}
    resnet = record(backend="mindspore", model="resnet18", strategy="linear-probe")
    text = render_table([old, new, resnet], "markdown")
    note = [ln for ln in text.splitlines() if ln.startswith("- seeds that do not reproduce")]
    assert len(note) == 1 and "efficientnet_lite0 full" in note[0] and "resnet18" not in note[0]
    assert "seeds that do not reproduce" not in render_table([new, resnet], "markdown")
