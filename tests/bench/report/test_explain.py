"""The lines under a run's table say what it compared: the settings of each arm, that an untuned
scratch arm ran at the fine-tuned arm's recipe, the published tuned answer, the command that tunes."""
from bench.report.explain import render_what_was_measured

from .test_report_groups import record


def _run():
    return [record(seed=0, acc=0.7), record(seed=0, acc=0.3, arm="scratch", strategy="scratch")]


def test_an_untuned_run_says_so_and_points_at_the_tuned_answer():
    published = ([record(seed=s, acc=0.9, study="s-full") for s in range(3)]
                 + [record(seed=s, acc=0.92, arm="scratch", strategy="scratch", study="s-scratch") for s in range(3)])
    text = render_what_was_measured(_run(), published, ["fake"])
    assert "finetune (full): sgd lr 0.01" in text and "recipe constant; not tuned" in text
    assert "scratch ran at a recipe written for the fine-tuned arm" in text
    assert "published, every arm tuned alike" in text and "fake full (tuned): fine-tuned 0.900, scratch 0.920" in text
    assert "python -m bench run --backend fake --experiment folder --strategy full --search 8 --seeds 3" in text


def test_nothing_published_is_said():
    text = render_what_was_measured(_run(), [], ["fake"])
    assert "no tuned records of folder (full) are published here" in text
    assert render_what_was_measured([], [], ["fake"]) == ""
