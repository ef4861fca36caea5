"""Recipes compared: rows per recipe with their own scratch baseline, the change a recipe makes with
seeds paired, a verdict line that changes when it should, and a machine or starting file that differs
said beside the rows."""
from bench.report.groups import row_label, group_records
from bench.report.recipes import render_recipes

from .test_report_groups import record

MODERN = dict(schedule="cosine", lr_warmup_epochs=1, epochs=4, label_smoothing=0.1, rand_augment="randaug-m7-mstd0.5")


def _task(ft, sc, backend="fake", **recipe):
    return ([record(seed=s, acc=a, backend=backend, **recipe) for s, a in enumerate(ft)]
            + [record(seed=s, acc=a, arm="scratch", strategy="scratch", backend=backend, **recipe)
               for s, a in enumerate(sc)])


def test_each_recipe_is_a_row_with_its_own_scratch_baseline():
    records = _task((0.80, 0.82, 0.81), (0.50, 0.52, 0.51), epochs=4) + _task((0.84, 0.86, 0.85), (0.60, 0.61, 0.62),
                                                                               **MODERN)
    labels = sorted(row_label(g) for g in group_records(records))
    assert "full [recipe: cosine after 1-epoch warm-up, smoothing 0.1, randaug-m7-mstd0.5]" in labels
    text = render_recipes(records, "markdown")
    assert "| constant " in text and "cosine after 1-epoch warm-up, smoothing 0.1, randaug-m7-mstd0.5 - constant" in text
    assert "+0.300 [" in text and "+0.240 [" in text          # each recipe's fine-tuned minus its own scratch
    assert "+0.040 [" in text and "+0.100 [" in text          # the recipe's change, fine-tuned and scratch
    assert "the verdict is the same under every recipe on every backend" in text
    assert "95% paired t interval over seeds above 0" in text and "no arm tuned" in text


def test_a_verdict_that_changes_is_named():
    records = _task((0.80, 0.82, 0.81), (0.50, 0.52, 0.51), epochs=4) + _task((0.60, 0.70, 0.65), (0.66, 0.61, 0.68),
                                                                               **MODERN)
    text = render_recipes(records, "markdown")
    assert "the verdict changes with the recipe on fake: resolved under constant; not resolved" in text


def test_two_machines_or_starting_files_are_said():
    records = _task((0.8, 0.81), (0.5, 0.52), epochs=4) + _task((0.84, 0.85), (0.6, 0.61), **MODERN)
    for i, r in enumerate(records):
        r["environment"] = {"cpu": "CPU A" if i < 4 else "CPU B", "cpu_count": 2}
        r["model"] = {"weights": {"sha256": "a" * 64 if i < 4 else "b" * 64}}
    text = render_recipes(records, "markdown")
    assert "2 machines: rows are not comparable" in text and "2 starting files" in text


def test_nothing_to_compare_is_no_section():
    assert render_recipes(_task((0.8, 0.81), (0.5, 0.52), epochs=4)) == ""


def test_the_sources_published_numbers_stand_beside_ours():
    from bench.report.tables import render_strategy_matrix
    rows = [record(seed=s, acc=0.5, experiment="aircraft", dataset="aircraft", model="mobilenet_v3_small",
                   strategy=strategy, train_split="trainval") for s in (0, 1) for strategy in ("full", "linear-probe")]
    text = render_strategy_matrix(rows, "markdown")
    assert "published (MindCV guide, Ascend)" in text and "0.8835" in text and "0.4866" in text
    other = render_strategy_matrix([record(seed=0, acc=0.5)], "markdown")  # no source numbers: no column
    assert "published" not in other
