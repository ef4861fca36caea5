"""The model-scale table: ImageNet top-1 as published against transfer accuracy, ranked per backend."""
from bench.report.scale import render_model_scale, scale_rows

from .test_report_groups import record

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def _records(accs: dict[str, dict[str, float]]):
    return [record(seed=s, acc=acc + 0.01 * s, backend=b, model=m, experiment="imagenet-scale", dataset="cifar10")
            for b, per_model in accs.items() for m, acc in per_model.items() for s in (0, 1, 2)]


def test_rows_carry_the_published_imagenet_top1_and_an_interval():
    rows = scale_rows(_records({"a": dict(zip(LITES, (0.6, 0.7, 0.8)))}))
    assert sorted(r["imagenet_top1"] for r in rows) == [75.1, 76.7, 77.6]
    assert all(r["seeds"] == 3 and r["ci"][0] < r["mean"] < r["ci"][1] for r in rows)


def test_the_ranking_says_whether_backends_agree():
    same = render_model_scale(_records({"a": dict(zip(LITES, (0.6, 0.7, 0.8))),
                                        "b": dict(zip(LITES, (0.5, 0.6, 0.7)))}))
    assert "the same on every backend" in same and "Kendall tau with ImageNet top-1: a +1.00, b +1.00" in same
    differ = render_model_scale(_records({"a": dict(zip(LITES, (0.6, 0.7, 0.8))),
                                          "b": dict(zip(LITES, (0.8, 0.7, 0.6)))}))
    assert "differs by backend" in differ and "b -1.00" in differ


def test_one_architecture_is_not_a_scale_study():
    assert render_model_scale(_records({"a": {"efficientnet_lite0": 0.6}})) == ""
