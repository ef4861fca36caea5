"""A report row is one configuration: no two configurations pass as seeds of one, a
repeated seed counts once, collapsed and contended runs are marked, unresolved gaps say so."""
import copy

import numpy as np

from bench.plan.config import RunConfig
from bench.report.groups import group_records
from bench.report.tables import gap_rows, render_report, render_table
from bench.records.store import new_record


def record(seed=0, acc=0.8, arm="finetune", strategy="full", n=200, ms=50.0, busy=False, flags=(), **config):
    base = dict(backend="fake", model="fake_mlp", experiment="folder", dataset="folder", arm=arm,
                strategy=strategy, seed=seed, scratch_init="shared" if arm == "scratch" else None)
    rec = new_record(RunConfig(**(base | config)))
    correct = round(acc * n)
    rec.update(status="ok", finished=f"2026-11-23T00:00:{seed:02d}Z", flags=list(flags))
    rec["curve"] = [{"epoch": 1, "eval_acc": correct / n, "eval_correct": correct, "n_eval": n, "cum_train_s": 1.0}]
    rec["accuracy"] = {"final": correct / n, "final_ci95": [0.7, 0.9], "best": correct / n}
    rec["time_to_accuracy"] = {"target": None, "train_s": None}
    rec["timing"] = {"steady": {"n": 10, "median_ms": ms, "p90_ms": ms, "iqr_ms": 1.0, "img_per_s": 100.0},
                     "compile_ms": 5.0, "data": {}, "packed": False, "contention": {"busy": busy}}
    return rec


def test_runs_that_differ_only_in_lr_never_share_a_row():
    records = [record(seed=s, lr=0.01) for s in (0, 1)] + [record(seed=s, lr=0.02, acc=0.6) for s in (0, 1)]
    groups = group_records(records)
    assert len(groups) == 2 and all(len(g.runs) == 2 for g in groups)
    assert sorted(g.variant for g in groups) == ["lr=0.01", "lr=0.02"]
    table = render_table(records, "markdown")
    assert "full [lr=0.01]" in table and "full [lr=0.02]" in table


def test_a_repeated_seed_counts_once_and_is_flagged():
    first, again = record(seed=0, acc=0.5), record(seed=0, acc=0.9)
    again["finished"] = "2026-11-23T01:00:00Z"
    (group,) = group_records([first, again, record(seed=1, acc=0.7)])
    assert group.seeds == [0, 1] and group.finals() == [0.9, 0.7] and group.duplicates == [first]
    assert "ran more than once" in render_table([first, again, record(seed=1)], "terminal")


def test_gap_pairs_seeds_and_marks_unresolved_rows():
    clear = [record(seed=s, acc=0.8 + 0.01 * s) for s in range(3)] + \
        [record(seed=s, acc=0.4 + 0.01 * s, arm="scratch", strategy="scratch") for s in range(3)]
    (row,) = gap_rows(clear)
    assert row[4] == "shared" and row[-1] == "resolved" and "3 paired seeds" in row[-2]
    noisy = [record(seed=s, acc=a) for s, a in enumerate((0.8, 0.5, 0.7))] + \
        [record(seed=s, acc=a, arm="scratch", strategy="scratch") for s, a in enumerate((0.6, 0.7, 0.5))]
    (row,) = gap_rows(noisy)
    assert row[-1].startswith("unresolved: interval includes 0")
    below = [record(seed=s, acc=0.3) for s in range(2)] + \
        [record(seed=s, acc=0.6 + 0.01 * s, arm="scratch", strategy="scratch") for s in range(2)]
    assert gap_rows(below)[0][-1] == "fine-tuned below scratch (resolved)"


def test_scratch_arms_of_other_budgets_are_not_paired():
    records = [record(seed=0), record(seed=0, arm="scratch", strategy="scratch", epochs=9)]
    assert gap_rows(records) == []


def test_collapsed_and_contended_runs_are_marked():
    collapsed = record(seed=0, acc=0.46, flags=[{"flag": "collapsed", "why": "final top-1 0.460 is not above chance"}])
    busy = record(seed=1, busy=True, strategy="linear-probe")
    text = render_table([collapsed, busy], "markdown")
    assert "⚠1/1" in text and "not above chance" in text
    # a contended run keeps its accuracy; its step time is left out of the time columns and the run is listed
    (busy_row,) = [line for line in text.splitlines() if "| linear-probe |" in line]
    assert "| -† " in busy_row and "50.0" not in busy_row
    assert "left out of the time columns" in text and "linear-probe seed 1" in text


def test_shared_and_native_scratch_are_compared():
    records = [record(seed=s, acc=0.5, arm="scratch", strategy="scratch") for s in range(2)]
    native = [copy.deepcopy(record(seed=s, acc=0.3 + 0.01 * s, arm="scratch", strategy="scratch",
                                   scratch_init="native")) for s in range(2)]
    text = render_report(records + native + [record(seed=s) for s in range(2)], "markdown")
    assert "## Scratch: shared canonical init vs each framework's own" in text
    assert "+0.195" in text  # shared 0.5 minus native 0.305 over the two seeds


def test_sweep_time_and_estimate_come_from_the_records():
    from bench.report.tables import render_sweep_time
    pre = record(arm="pretrain", strategy="full")
    pre["created"], pre["finished"] = "2026-11-23T00:00:00Z", "2026-11-23T00:10:00Z"
    arms = [record(seed=s) for s in range(4)]
    for a in arms:
        a["created"], a["finished"] = "2026-11-23T01:00:00Z", "2026-11-23T01:05:00Z"
    text = render_sweep_time([pre] + arms, "markdown", nodes=(1, 4))
    row = [line for line in text.splitlines() if line.startswith("| folder")][0]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells == ["folder", "5", "30.0", "10.0", "30.0", "15.0"]  # 10 min pretrain + 20 min of arms / N


def test_seed_count_is_checked_against_the_measured_spread():
    from bench.report.tables import render_seed_count
    recs = [record(seed=s, acc=a) for s, a in enumerate((0.80, 0.70, 0.75))] + \
        [record(seed=s, acc=a, arm="scratch", strategy="scratch") for s, a in enumerate((0.40, 0.45, 0.30))]
    row = [line for line in render_seed_count(recs, "markdown").splitlines() if line.startswith("| folder")][0]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    d = np.subtract((0.80, 0.70, 0.75), (0.40, 0.45, 0.30))
    assert cells[:4] == ["folder", "3–3", f"{d.std(ddof=1):.3f}", f"{d.mean():.3f}"] and cells[4] == "3"


def test_two_tuned_rows_of_one_study_are_named():
    a = [record(seed=s, lr=0.01, study="k1") for s in (0, 1)]
    b = [record(seed=s, lr=0.03, study="k1", acc=0.7) for s in (0, 1)]
    text = render_table(a + b, "markdown")
    assert "study k1: 2 tuned rows" in text and "it chose more than once" in text
    assert "tuned rows" not in render_table(a, "markdown")


def test_scratch_variants_give_one_baseline_chosen_without_a_test_score():
    """A task trained from scratch at several lrs pairs every fine-tuned row with one of them: the one
    with the most seeds (not the best or worst on test), and the notes say how many there were."""
    ft = [record(seed=s, acc=0.8, lr=0.01 * (1 + k)) for k in range(3) for s in range(3)]
    best_on_test = [record(seed=s, acc=0.95, arm="scratch", strategy="scratch", lr=0.5) for s in range(2)]
    most_seeds = [record(seed=s, acc=0.4, arm="scratch", strategy="scratch", lr=0.1) for s in range(3)]
    rows = gap_rows(ft + best_on_test + most_seeds)
    assert len(rows) == 3 and {r[7] for r in rows} == {"0.400"}
    assert "under 2 settings" in render_table(ft + best_on_test + most_seeds, "markdown")


def test_pairing_is_linear_in_scratch_variants():
    """400 fine-tuned lr variants against 400 scratch lr variants: 400 pairs, not 160,000."""
    from bench.report.groups import pair_groups
    records = [record(seed=0, lr=1e-4 * (1 + k)) for k in range(400)] + \
        [record(seed=0, arm="scratch", strategy="scratch", lr=1e-4 * (1 + k)) for k in range(400)]
    pairs = pair_groups(group_records(records))
    assert len(pairs) == 400 and len({id(s) for _, s in pairs}) == 1
